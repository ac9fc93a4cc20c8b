// @generated automatically by Diesel CLI.

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    bot_tokens (token_hash) {
        token_hash -> Text,
        bot_name -> Text,
        created_by -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    dead_letters (id) {
        id -> Text,
        at -> BigInt,
        room -> Text,
        message_id -> Nullable<BigInt>,
        what -> Text,
        error -> Text,
    }
}

diesel::table! {
    messages (room, id) {
        room -> Text,
        id -> BigInt,
        author -> Text,
        body -> Text,
        created_at -> BigInt,
        nonce -> Nullable<Text>,
        owner -> Nullable<Text>,
        reply_to -> Nullable<BigInt>,
    }
}

diesel::table! {
    message_edits (room, message_id) {
        room -> Text,
        message_id -> BigInt,
        body -> Text,
        edited_at -> BigInt,
    }
}

diesel::table! {
    mutes (room, user_key) {
        room -> Text,
        user_key -> Text,
        until -> BigInt,
    }
}

diesel::table! {
    reactions (room, message_id, emoji, owner) {
        room -> Text,
        message_id -> BigInt,
        emoji -> Text,
        owner -> Text,
        user_name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    room_bans (room, target, name_key) {
        room -> Text,
        target -> Text,
        name_key -> Text,
        user_name -> Text,
        until -> BigInt,
    }
}

diesel::table! {
    room_invites (room, user_key) {
        room -> Text,
        user_key -> Text,
        invited_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    rooms (name) {
        name -> Text,
        created_at -> BigInt,
        created_by -> Nullable<Text>,
        closed_at -> Nullable<BigInt>,
        private -> SmallInt,
        epoch -> Text,
        last_id -> BigInt,
        encryption -> Nullable<Text>,
        key_salt -> Nullable<Text>,
    }
}

diesel::table! {
    server_state (id) {
        id -> SmallInt,
        running -> SmallInt,
        started_at -> BigInt,
        stopped_at -> Nullable<BigInt>,
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

diesel::allow_tables_to_appear_in_same_query!(
    audit_log,
    bot_tokens,
    dead_letters,
    message_edits,
    messages,
    mutes,
    reactions,
    room_bans,
    room_invites,
    rooms,
    server_state,
    sessions,
    users,
);
