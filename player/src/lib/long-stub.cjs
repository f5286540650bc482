// Stands in for the `long` package that protobufjs loads for 64-bit integers. Entry's
// protocol has none, and `long` compiles a WebAssembly module as it loads, which the pages'
// Content-Security-Policy refuses (with a console error on every page load). Without it,
// protobufjs reads 64-bit integers as plain numbers.
module.exports = null;
