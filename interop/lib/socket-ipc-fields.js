'use strict';
// Report fields shared by the @crussell52/socket-ipc drivers.

const { errorFields, toPlain } = require('./driver-io');

// A value as JSON, or undefined (so the key is left out of the line) when it is undefined:
// a frame without "message" reads as a missing key, not as null.
function present(value) {
  return value === undefined ? undefined : toPlain(value);
}

// errorFields plus what the package's error classes carry (SendError: sentTopic, sentMessage;
// BadClientError: clientId; DecodeError: rawData) and a system error's syscall/errno/address.
function ipcErrorFields(err) {
  const out = errorFields(err);
  if (err && typeof err === 'object') {
    for (const key of ['sentTopic', 'sentMessage', 'clientId', 'rawData', 'errno', 'syscall', 'address']) {
      if (err[key] !== undefined) out[key] = toPlain(err[key]);
    }
  }
  return out;
}

module.exports = { ipcErrorFields, present };
