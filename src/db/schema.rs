// @generated automatically by Diesel CLI.

diesel::table! {
    messages (room, id) {
        room -> Text,
        id -> BigInt,
        author -> Text,
        body -> Text,
        created_at -> BigInt,
        nonce -> Nullable<Text>,
    }
}

diesel::table! {
    rooms (name) {
        name -> Text,
        created_at -> BigInt,
        created_by -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(messages, rooms,);
