#include "client/client_error.h"

#include <uv.h>

namespace hirecache {

std::string CodeForUvStatus(int status) {
  switch (status) {
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
      return "ENOTFOUND";  // As Node's dns and net modules report an unknown host.
    case UV_EAI_AGAIN:
      return "EAI_AGAIN";
    default:
      return uv_err_name(status);
  }
}

ClientError UvError(int status, const std::string& what) {
  return ClientError{ErrorKind::kConnection, CodeForUvStatus(status),
                     what + ": " + uv_strerror(status)};
}

std::string EndpointOf(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace hirecache
