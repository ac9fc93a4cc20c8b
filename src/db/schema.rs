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

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_key -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    users (name_key) {
        name_key -> Text,
        name -> Text,
        password_hash -> Text,
        is_admin -> SmallInt,
        banned_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(messages, rooms, sessions, users,);
