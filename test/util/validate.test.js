'use strict';
// Proves the one validation vocabulary (lib/util/validate.js) that every module's refusals
// use: how a refused value is described (objects never printed, secrets by type only), the
// message shape, the class rule (wrong type: TypeError; wrong value of the right type, NaN
// and fractions included: RangeError) and the codes.
const {
  describe: describeValue,
  invalidParameterError,
  checkInteger,
  checkNumber,
  checkType,
  checkOneOf,
  checkKnownOptions,
  integerError,
} = require('../../lib/util/validate');

/** Runs fn, returns the error it threw (fails the test when it does not throw). */
function thrown(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('describe()', () => {
  test.each([
    [undefined, 'undefined'],
    [null, 'object null'],
    [1.5, 'number 1.5'],
    [NaN, 'number NaN'],
    [-0, 'number -0'],
    [10n, 'bigint 10n'],
    [true, 'boolean true'],
    ['10', "string '10'"],
    [function named() {}, 'function named'],
    [() => {}, 'function'],
    [{ password: 'hunter2' }, 'object'],
    [new Map([['password', 'hunter2']]), 'an instance of Map'],
    [Buffer.from('hunter2'), 'an instance of Buffer'],
    [Object.create(null), 'object'],
  ])('%p is shown as %s', (value, shown) => {
    expect(describeValue(value)).toBe(shown);
  });

  test('a long string is cut, a secret shows its type alone', () => {
    expect(describeValue('x'.repeat(1000)).length).toBeLessThan(100);
    expect(describeValue('hunter2', { secret: true })).toBe('string (not shown)');
    expect(describeValue(123456, { secret: true })).toBe('number (not shown)');
  });
});

describe('the message shape, the class and the code', () => {
  test('invalidParameterError: "<where>: <name> must be <expected>, got <value>"', () => {
    const err = invalidParameterError('option points', 'an integer', '3', { where: 'createLimiter' });
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe("createLimiter: option points must be an integer, got string '3'");
    expect(err.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(invalidParameterError('x', 'y', 1, { kind: 'range' })).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(invalidParameterError('x', 'y', 'z', { kind: 'value' })).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(invalidParameterError('x', 'y', 1, { code: 'ERR_MINE' }).code).toBe('ERR_MINE');
  });

  test('a caller may bring its own error class', () => {
    class MyError extends Error {}
    const err = invalidParameterError('X', 'y', 1, { ErrorClass: MyError, code: 'ERR_X' });
    expect(err).toBeInstanceOf(MyError);
    expect(err.code).toBe('ERR_X');
  });

  test.each([
    ['5', TypeError, /n must be a number, got string '5'/],
    [undefined, TypeError, /n must be a number, got undefined/],
    [NaN, RangeError, /n must be an integer from 1 to 10, got number NaN/],
    [1.5, RangeError, /from 1 to 10/],
    [0, RangeError, /from 1 to 10/],
    [11, RangeError, /from 1 to 10/],
  ])('checkInteger refuses %p with a %p', (value, Class, message) => {
    const err = thrown(() => checkInteger('n', value, { min: 1, max: 10 }));
    expect(err).toBeInstanceOf(Class);
    expect(err.message).toMatch(message);
    expect(integerError('n', value, { min: 1, max: 10 })).toBeInstanceOf(Class);
  });

  test('checkInteger and checkNumber return what they accept; integerError returns null for it', () => {
    expect(checkInteger('n', 10, { min: 1, max: 10 })).toBe(10);
    expect(checkInteger('n', 2 ** 40, { min: 1 })).toBe(2 ** 40);
    expect(integerError('n', 1, { min: 1, max: 10 })).toBeNull();
    expect(checkNumber('s', 0.25, { min: 0, max: 1 })).toBe(0.25);
    expect(thrown(() => checkInteger('n', 0, { min: 1 })).message).toMatch(/an integer >= 1/);
  });

  test('checkNumber: Infinity and NaN are out of range, a string is of the wrong type', () => {
    expect(thrown(() => checkNumber('s', Infinity, { min: 0 }))).toBeInstanceOf(RangeError);
    expect(thrown(() => checkNumber('s', NaN))).toBeInstanceOf(RangeError);
    expect(thrown(() => checkNumber('s', '1'))).toBeInstanceOf(TypeError);
    expect(thrown(() => checkNumber('s', -1, { min: 0, expected: 'a number of seconds >= 0' })).message).toMatch(/a number of seconds >= 0, got number -1/);
  });

  test('checkType, checkOneOf and checkKnownOptions', () => {
    expect(checkType('o', {}, 'object')).toEqual({});
    expect(thrown(() => checkType('o', null, 'object')).message).toMatch(/o must be an object, got object null/);
    expect(checkOneOf('mode', 'a', ['a', 'b'], "'a' or 'b'")).toBe('a');
    expect(thrown(() => checkOneOf('mode', 'c', ['a', 'b'], "'a' or 'b'")).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(thrown(() => checkOneOf('mode', 3, ['a', 'b'], "'a' or 'b'")).code).toBe('ERR_INVALID_ARG_TYPE');
    const err = thrown(() => checkKnownOptions({ a: 1, c: 2 }, ['a', 'b'], { where: 'f', path: 'opts.' }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('f: unknown option opts.c (known: a, b)');
  });
});
