//! Table definitions shared by both backends (portable column types only).

diesel::table! {
    tenant_groups (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tenants (id) {
        id -> Text,
        slug -> Text,
        legal_name -> Text,
        group_id -> Nullable<Text>,
        jurisdiction -> Text,
        timezone -> Text,
        default_locale -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_key_directory (client_id) {
        client_id -> Text,
        tenant_id -> Text,
    }
}

diesel::table! {
    api_keys (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        role -> Text,
        label -> Text,
        secret_digest -> Binary,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, key) {
        tenant_id -> Text,
        key -> Text,
        scope -> Text,
        request_digest -> Binary,
        status -> Integer,
        response_body -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(tenants -> tenant_groups (group_id));
diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenant_groups,
    tenants,
    api_key_directory,
    api_keys,
    idempotency_keys
);
