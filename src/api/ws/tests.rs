//! Unit tests of the WebSocket API.
