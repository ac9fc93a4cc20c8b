//! The JSON command parser: any text a client sends parses into a frame or
//! into an error with a message, never a panic.

use parlor::protocol::ClientFrame;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            if let Err(e) = ClientFrame::parse(text) {
                assert!(!e.to_string().is_empty());
            }
        }
    });
}
