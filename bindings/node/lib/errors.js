'use strict';
// The one conversion of a native error into a JS error. The native half sends etcd's error
// payload (errorCode, message, cause, index) and the kind's name (the core's ErrorCode).

const MARK = 'ETCDRS_ERROR ';

/** An error etcd (or etcdrs) answered: etcd's errorCode, message, cause and index, and
 * `code`, the kind's name ('KeyNotFound', 'TestFailed', 'NodeExist', ...). */
class EtcdError extends Error {
  constructor({ errorCode, message, cause, index, code }) {
    super(message);
    this.name = 'EtcdError';
    this.errorCode = errorCode;
    this.cause = cause;
    this.index = index;
    this.code = code;
  }

  /** etcd's JSON error body. */
  toJSON() {
    return { errorCode: this.errorCode, message: this.message, cause: this.cause, index: this.index };
  }
}

/** The error the native module threw, as the JS error it stands for. */
function fromNative(e) {
  if (e && typeof e.message === 'string' && e.message.startsWith(MARK)) {
    const err = new EtcdError(JSON.parse(e.message.slice(MARK.length)));
    return err;
  }
  return e;
}

/** A native call's answer, turning its error into an EtcdError. The native module answers
 * a call that did not have to wait at once, and a Promise for one that does; either way
 * this is a Promise. */
async function call(f) {
  try {
    return await f();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Run a native call that answers at once, turning its error into an EtcdError. */
function callSync(f) {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

module.exports = { EtcdError, call, callSync, fromNative };
