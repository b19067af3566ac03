#include "ratelimit/rate_limiter_wrap.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <iterator>
#include <random>
#include <string>

#include "util/raw_method.h"

namespace hirecache::binding {

namespace {

constexpr size_t kMaxKeyUnitsLimit = size_t{1} << 20;

// The local limiter's clock: the kernel's monotonic clock, in microseconds, immune to
// wall-clock jumps. Not the coarse one: its lag varies between nothing and a whole tick
// (4 ms here), so a TAT written when it lagged a tick would be reached a tick early, and
// tokens would come back early. CLOCK_MONOTONIC's resolution is 1 ns, below the
// microsecond that the buckets count in, so points are never returned early.
int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// The instant a decision of `s` is made at: the monotonic clock, or the clock JS sets.
int64_t Now(const LimiterShared& s) { return s.manual_now_us >= 0 ? s.manual_now_us : NowUs(); }

// A whole non-negative count from a double: fractions round up, anything past 2^62
// saturates. Returns false for NaN and negatives.
bool ToCount(double d, int64_t* out) {
  if (!(d >= 0)) return false;
  *out = d >= 4611686018427387904.0 ? int64_t{1} << 62 : static_cast<int64_t>(std::ceil(d));
  return true;
}

// An option lib/ratelimit validated as a whole non-negative number: a missing one reads as
// 0 (which the constructor refuses for every option but blockUs), a huge one saturates at
// 2^62 like ToCount.
int64_t OptionCount(const OptionReader& options, const char* name) {
  return static_cast<int64_t>(std::min<uint64_t>(options.Uint64(name, 0), uint64_t{1} << 62));
}

uint64_t RandomSeed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

int64_t MsToUs(int64_t ms) { return ms >= (int64_t{1} << 52) ? int64_t{1} << 62 : ms * 1000; }

// ---- The per-key methods: raw N-API callbacks (RawMethod) whose data is the state.

napi_value Int32(napi_env env, int32_t v) {
  napi_value out = nullptr;
  napi_create_int32(env, v, &out);
  return out;
}

napi_value ThrowType(napi_env env, const char* message) {
  napi_throw_type_error(env, nullptr, message);
  return nullptr;
}

// Reads argument `v` as a key into s.key_units. Returns 1 for a key within the cap, 0 for
// a longer one, -1 (with a TypeError pending) for a non-string.
int KeyArg(napi_env env, LimiterShared& s, napi_value v, std::string_view* key) {
  size_t n = 0;
  // UTF-16 is what V8 holds and copies fastest; the buffer has room for one unit more than
  // the cap, so a longer key shows as n > cap.
  if (napi_get_value_string_utf16(env, v, s.key_units.data(), s.key_units.size(), &n) != napi_ok) {
    ThrowType(env, "LocalLimiter: key must be a string");
    return -1;
  }
  if (n > s.max_key_units) return 0;
  *key = std::string_view(reinterpret_cast<const char*>(s.key_units.data()), n * sizeof(char16_t));
  return 1;
}

bool CountArg(napi_env env, napi_value v, const char* message, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !ToCount(d, out)) {
    ThrowType(env, message);
    return false;
  }
  return true;
}

// Writes a decision's numbers to the shared array and returns its flags.
int32_t Report(LimiterShared& s, const BucketDecision& d) {
  s.out[0] = static_cast<double>(d.remaining);
  // Milliseconds, rounded up: a caller told to wait 0 ms must really be able to go.
  s.out[1] = static_cast<double>(d.wait_us / 1000 + (d.wait_us % 1000 != 0 ? 1 : 0));
  s.out[2] = static_cast<double>(d.consumed);
  s.out[4] = static_cast<double>(d.debt_after);
  return (d.allowed ? kLimiterAllowed : 0) | (d.first ? kLimiterFirst : 0) |
         (d.blocked ? kLimiterBlocked : 0);
}

// Every per-key method takes up to three arguments. The table only throws when it cannot
// grow (std::bad_alloc, which RawMethod turns into ERR_OUT_OF_MEMORY), and stays consistent
// when it does.
template <napi_value (*Op)(napi_env, LimiterShared&, napi_value*)>
constexpr napi_callback kPerKey = RawMethod<LimiterShared, 3, Op>;

// The four methods of shape (key, cost) -> flags.
template <LocalLimiter::Status (LocalLimiter::*method)(std::string_view, int64_t, int64_t,
                                                       BucketDecision*)>
napi_value KeyCostOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k <= 0) return k == 0 ? Int32(env, kLimiterKeyTooLong) : nullptr;
  int64_t cost = 0;
  if (!CountArg(env, argv[1], "LocalLimiter: cost must be a non-negative number", &cost)) {
    return nullptr;
  }
  BucketDecision d;
  (s.limiter.*method)(key, cost, Now(s), &d);
  return Int32(env, Report(s, d));
}

// consume(key) with a cost of 1, the common case: one argument less to convert, and the
// flags go to out[3] instead of a returned number, so the call makes no JS value at all.
napi_value ConsumeOneOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k < 0) return nullptr;
  if (k == 0) {
    s.out[3] = kLimiterKeyTooLong;
    return nullptr;
  }
  BucketDecision d;
  if (s.manual_now_us >= 0) {
    s.limiter.Consume(key, 1, s.manual_now_us, &d);
  } else {
    s.limiter.ConsumeNow(key, 1, &NowUs, &d);
  }
  s.out[3] = Report(s, d);
  return nullptr;
}

napi_value CheckOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k <= 0) return k == 0 ? Int32(env, kLimiterKeyTooLong) : nullptr;
  int64_t cost = 0;
  if (!CountArg(env, argv[1], "LocalLimiter: cost must be a non-negative number", &cost)) {
    return nullptr;
  }
  BucketDecision d;
  bool known = false;
  s.limiter.Check(key, cost, Now(s), &d, &known);
  return Int32(env, known ? (Report(s, d) | kLimiterFound) : 0);
}

napi_value GetOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k <= 0) return k == 0 ? Int32(env, kLimiterKeyTooLong) : nullptr;
  BucketDecision d;
  bool found = false;
  s.limiter.Get(key, Now(s), &d, &found);
  return Int32(env, found ? (Report(s, d) | kLimiterFound) : 0);
}

napi_value BlockOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k <= 0) return k == 0 ? Int32(env, kLimiterKeyTooLong) : nullptr;
  int64_t ms = 0;
  if (!CountArg(env, argv[1], "LocalLimiter: durationMs must be a non-negative number", &ms)) {
    return nullptr;
  }
  BucketDecision d;
  s.limiter.Block(key, MsToUs(ms), Now(s), &d);
  return Int32(env, Report(s, d));
}

napi_value ObserveOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k <= 0) return k == 0 ? Int32(env, kLimiterKeyTooLong) : nullptr;
  int64_t debt = 0, trust_ms = 0;
  if (!CountArg(env, argv[1], "LocalLimiter: debt must be a non-negative number", &debt) ||
      !CountArg(env, argv[2], "LocalLimiter: trustMs must be a non-negative number", &trust_ms)) {
    return nullptr;
  }
  s.limiter.Observe(key, debt, MsToUs(trust_ms), Now(s));
  return Int32(env, 0);
}

napi_value DeleteOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  std::string_view key;
  const int k = KeyArg(env, s, argv[0], &key);
  if (k <= 0) return k == 0 ? Int32(env, kLimiterKeyTooLong) : nullptr;
  bool erased = false;
  s.limiter.Erase(key, &erased);
  napi_value out = nullptr;
  napi_get_boolean(env, erased, &out);
  return out;
}

// setClockUs(us): moves the clock of a limiter made with the clockUs option.
napi_value SetClockOperation(napi_env env, LimiterShared& s, napi_value* argv) {
  int64_t us = 0;
  if (!CountArg(env, argv[0], "LocalLimiter: us must be a non-negative number", &us)) {
    return nullptr;
  }
  s.manual_now_us = us;
  return nullptr;
}

void DeleteHolder(napi_env /*env*/, void* data, void* /*hint*/) {
  delete static_cast<std::shared_ptr<LimiterShared>*>(data);
}

// Defines `name` on `target` as a function calling `callback` with the state as its data,
// and its own reference to the state, released when the function is collected.
void Install(Napi::Env env, Napi::Object target, const char* name, napi_callback callback,
             const std::shared_ptr<LimiterShared>& shared) {
  napi_value fn = nullptr;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, shared.get(), &fn) != napi_ok) {
    throw Napi::Error::New(env);
  }
  auto* holder = new std::shared_ptr<LimiterShared>(shared);
  if (napi_add_finalizer(env, fn, holder, DeleteHolder, nullptr, nullptr) != napi_ok) {
    delete holder;
    throw Napi::Error::New(env);
  }
  target.Set(name, Napi::Value(env, fn));
}

void DeleteHolderHint(napi_env /*env*/, void* /*data*/, void* hint) {
  delete static_cast<std::shared_ptr<LimiterShared>*>(hint);
}

// A Float64Array over `shared->out`, whose buffer holds a reference to the state: the
// memory C++ writes to lives as long as the state, whatever JS does with the array.
Napi::Float64Array ResultArray(Napi::Env env, const std::shared_ptr<LimiterShared>& shared) {
  auto* holder = new std::shared_ptr<LimiterShared>(shared);
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, shared->out, sizeof shared->out, DeleteHolderHint,
                                       holder, &buffer) != napi_ok) {
    delete holder;
    throw Napi::Error::New(env);
  }
  napi_value array = nullptr;
  if (napi_create_typedarray(env, napi_float64_array, std::size(shared->out), buffer, 0, &array) !=
      napi_ok) {
    throw Napi::Error::New(env);
  }
  return Napi::Float64Array(env, array);
}

// The flags of the per-key methods, for lib/ratelimit to read instead of repeating them.
Napi::Object Flags(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("ALLOWED", Napi::Number::New(env, kLimiterAllowed));
  out.Set("FIRST", Napi::Number::New(env, kLimiterFirst));
  out.Set("BLOCKED", Napi::Number::New(env, kLimiterBlocked));
  out.Set("FOUND", Napi::Number::New(env, kLimiterFound));
  out.Set("KEY_TOO_LONG", Napi::Number::New(env, kLimiterKeyTooLong));
  out.Freeze();
  return out;
}

}  // namespace

LimiterShared::LimiterShared(const TokenBucket& bucket, size_t max_entries, size_t max_key)
    : limiter(bucket, max_entries, max_key * sizeof(char16_t), RandomSeed(), RandomSeed()),
      max_key_units(max_key),
      key_units(max_key + 2) {}

Napi::Function DefineLocalLimiter(Napi::Env env) { return LocalLimiterWrap::Define(env); }

Napi::Function LocalLimiterWrap::Define(Napi::Env env) {
  const Napi::Number max_debt = Napi::Number::New(env, static_cast<double>(kMaxDebtUnits));
  const Napi::Number max_key = Napi::Number::New(env, static_cast<double>(kMaxKeyUnitsLimit));
  return DefineClass(env, "LocalLimiter",
                     {
                         StaticMethod<&LocalLimiterWrap::Shape>("shape"),
                         StaticValue("MAX_DEBT_UNITS", max_debt, napi_enumerable),
                         StaticValue("MAX_KEY_LENGTH", max_key, napi_enumerable),
                         StaticValue("FLAGS", Flags(env)),
                         InstanceMethod<&LocalLimiterWrap::Clear>("clear"),
                         InstanceMethod<&LocalLimiterWrap::Stats>("stats"),
                     });
}

LocalLimiterWrap::LocalLimiterWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<LocalLimiterWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "LocalLimiter: expected an options object");
  }
  const OptionReader o(info[0].As<Napi::Object>());
  BucketShape shape;
  if (!ComputeBucketShape(OptionCount(o, "points"), OptionCount(o, "durationUs"),
                          OptionCount(o, "burst"), &shape)) {
    throw Napi::RangeError::New(env,
                                "LocalLimiter: points, durationUs and burst do not make a bucket");
  }
  const int64_t max_entries = OptionCount(o, "maxEntries");
  const int64_t max_key = OptionCount(o, "maxKeyLength");
  if (max_entries < 1 || max_key < 1 || max_key > static_cast<int64_t>(kMaxKeyUnitsLimit)) {
    throw Napi::RangeError::New(env, "LocalLimiter: maxEntries or maxKeyLength out of range");
  }
  shared_ = std::make_shared<LimiterShared>(TokenBucket(shape, OptionCount(o, "blockUs")),
                                            static_cast<size_t>(max_entries),
                                            static_cast<size_t>(max_key));
  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("out", ResultArray(env, shared_));
  Install(env, self, "consume", kPerKey<KeyCostOperation<&LocalLimiter::Consume>>, shared_);
  Install(env, self, "consumeOne", kPerKey<ConsumeOneOperation>, shared_);
  Install(env, self, "penalty", kPerKey<KeyCostOperation<&LocalLimiter::Penalty>>, shared_);
  Install(env, self, "reward", kPerKey<KeyCostOperation<&LocalLimiter::Reward>>, shared_);
  Install(env, self, "check", kPerKey<CheckOperation>, shared_);
  Install(env, self, "get", kPerKey<GetOperation>, shared_);
  Install(env, self, "block", kPerKey<BlockOperation>, shared_);
  Install(env, self, "observe", kPerKey<ObserveOperation>, shared_);
  Install(env, self, "delete", kPerKey<DeleteOperation>, shared_);
  if (o.Has("clockUs")) {
    shared_->manual_now_us = OptionCount(o, "clockUs");
    Install(env, self, "setClockUs", kPerKey<SetClockOperation>, shared_);
  }
}

Napi::Value LocalLimiterWrap::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t args[3];
  for (uint32_t i = 0; i < 3; ++i) {
    if (!info[i].IsNumber() || !ToCount(info[i].As<Napi::Number>().DoubleValue(), &args[i])) {
      throw Napi::TypeError::New(env, "LocalLimiter.shape: expected (points, durationUs, burst)");
    }
  }
  BucketShape shape;
  if (!ComputeBucketShape(args[0], args[1], args[2], &shape)) return env.Null();
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(shape.scale)));
  out.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(shape.interval)));
  out.Set(uint32_t{2}, Napi::Number::New(env, static_cast<double>(shape.tolerance)));
  out.Set(uint32_t{3}, Napi::Boolean::New(env, shape.exact));
  return out;
}

Napi::Value LocalLimiterWrap::Clear(const Napi::CallbackInfo& info) {
  shared_->limiter.Clear();
  return info.Env().Undefined();
}

Napi::Value LocalLimiterWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const LocalLimiterStats s = shared_->limiter.stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("entries", Napi::Number::New(env, static_cast<double>(s.entries)));
  out.Set("maxEntries", Napi::Number::New(env, static_cast<double>(s.max_entries)));
  out.Set("swept", Napi::Number::New(env, static_cast<double>(s.swept)));
  out.Set("evicted", Napi::Number::New(env, static_cast<double>(s.evicted)));
  return out;
}

}  // namespace hirecache::binding
