//! The name and room validators: whatever they accept is within the rules,
//! and accepting is stable (a valid name parses to itself again).

use parlor::domain::{DisplayName, RoomName};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Ok(name) = DisplayName::parse(text) {
            assert!((1..=DisplayName::MAX_CHARS).contains(&name.as_str().chars().count()));
            assert!(!name.as_str().chars().any(char::is_control));
            let again = DisplayName::parse(name.as_str()).expect("a valid name stays valid");
            assert_eq!(again.as_str(), name.as_str());
            assert_eq!(again.skeleton(), name.skeleton());
        }
        if let Ok(room) = RoomName::parse(text) {
            assert!((1..=RoomName::MAX_LEN).contains(&room.as_str().len()));
            assert_eq!(RoomName::parse(room.as_str()).expect("a valid room stays valid").as_str(), room.as_str());
        }
    });
}
