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

macro_rules! purpose_table {
    ($name:ident, $owner:ident $(, $extra:ident -> $ty:ty)*) => {
        diesel::table! {
            $name ($owner, code, version) {
                $owner -> Text,
                code -> Text,
                version -> Integer,
                is_current -> Bool,
                name_ru -> Text,
                name_en -> Text,
                legal_basis -> Text,
                channels -> Text,
                data_categories -> Text,
                retention_days -> Integer,
                consent_term_days -> Nullable<Integer>,
                created_at -> Timestamp,
                reconsent_version -> Nullable<Integer>,
                reconsent_lapse_at -> Nullable<Timestamp>,
                $($extra -> $ty,)*
            }
        }
    };
}

purpose_table!(purposes, tenant_id);
purpose_table!(group_purposes, group_id, owner_tenant_id -> Nullable<Text>);

diesel::table! {
    group_purpose_codes (group_id, code, tenant_id) {
        group_id -> Text,
        code -> Text,
        tenant_id -> Text,
    }
}

diesel::table! {
    policies (tenant_id, version) {
        tenant_id -> Text,
        version -> Text,
        url -> Nullable<Text>,
        body -> Nullable<Text>,
        body_sha256 -> Nullable<Text>,
        effective_at -> Timestamp,
        material -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    subjects (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        person_id -> Nullable<Text>,
        external_ref_index -> Nullable<Binary>,
        email_index -> Nullable<Binary>,
        phone_index -> Nullable<Binary>,
        pii -> Nullable<Binary>,
        locale -> Nullable<Text>,
        timezone -> Nullable<Text>,
        channels -> Text,
        restricted_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// A subject's data key, wrapped with the tenant's key; deleted on erasure.
    subject_keys (tenant_id, subject_id) {
        tenant_id -> Text,
        subject_id -> Text,
        wrapped_key -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    group_identities (group_id, kind, digest) {
        group_id -> Text,
        kind -> Text,
        digest -> Binary,
        person_id -> Text,
    }
}

diesel::table! {
    objections (tenant_id, subject_id, purpose_code) {
        tenant_id -> Text,
        subject_id -> Text,
        purpose_code -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    consent_events (tenant_id, seq) {
        tenant_id -> Text,
        seq -> BigInt,
        id -> Text,
        receipt_id -> Text,
        subject_id -> Text,
        purpose_scope -> Text,
        purpose_code -> Text,
        purpose_version -> Integer,
        action -> Text,
        method -> Text,
        actor_kind -> Text,
        policy_version -> Nullable<Text>,
        payload -> Nullable<Binary>,
        payload_digest -> Binary,
        occurred_at -> Timestamp,
        recorded_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        import_key -> Nullable<Text>,
        prev_hash -> Binary,
        hash -> Binary,
        hash_version -> Integer,
        reason -> Nullable<Text>,
        consent_document -> Nullable<Text>,
    }
}

diesel::table! {
    ledger_heads (tenant_id) {
        tenant_id -> Text,
        seq -> BigInt,
        hash -> Binary,
    }
}

diesel::table! {
    ledger_checkpoints (tenant_id, seq) {
        tenant_id -> Text,
        seq -> BigInt,
        head_hash -> Binary,
        created_at -> Timestamp,
        signature -> Binary,
    }
}

diesel::table! {
    consent_states (tenant_id, subject_id, purpose_code) {
        tenant_id -> Text,
        subject_id -> Text,
        purpose_code -> Text,
        status -> Text,
        since -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        purpose_version -> Integer,
        policy_version -> Nullable<Text>,
        last_event_id -> Text,
    }
}

diesel::table! {
    group_consent_states (group_id, person_id, purpose_code) {
        group_id -> Text,
        person_id -> Text,
        purpose_code -> Text,
        status -> Text,
        since -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        purpose_version -> Integer,
        policy_version -> Nullable<Text>,
        last_event_id -> Text,
        last_tenant_id -> Text,
        last_subject_id -> Text,
    }
}

diesel::table! {
    audit_log (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        actor -> Text,
        action -> Text,
        subject_id -> Nullable<Text>,
        at -> Timestamp,
        reason -> Nullable<Text>,
        object_type -> Nullable<Text>,
        object_id -> Nullable<Text>,
    }
}

diesel::table! {
    imports (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        status -> Text,
        format -> Text,
        lines_total -> BigInt,
        lines_ok -> BigInt,
        lines_failed -> BigInt,
        errors -> Text,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        heartbeat_at -> Nullable<Timestamp>,
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

diesel::table! {
    notification_settings (tenant_id) {
        tenant_id -> Text,
        expiry_offsets -> Text,
        expiry_purpose -> Nullable<Text>,
        hourly_send_quota -> Nullable<Integer>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notifications (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        subject_id -> Nullable<Text>,
        kind -> Text,
        category -> Text,
        purpose_code -> Nullable<Text>,
        channel -> Text,
        fallback_email -> Bool,
        locale -> Text,
        data -> Nullable<Binary>,
        target -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        source -> Nullable<Text>,
        status -> Text,
        reason -> Nullable<Text>,
        attempts -> Integer,
        max_attempts -> Integer,
        due_at -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        sent_channel -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notification_attempts (tenant_id, notification_id, attempt, channel, outcome) {
        tenant_id -> Text,
        notification_id -> Text,
        attempt -> Integer,
        channel -> Text,
        outcome -> Text,
        detail -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    templates (tenant_id, kind, locale) {
        tenant_id -> Text,
        kind -> Text,
        locale -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subscriptions (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        subject_id -> Text,
        name -> Text,
        expires_at -> Timestamp,
        renew_url -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    telegram_chats (tenant_id, subject_id, chat_id) {
        tenant_id -> Text,
        subject_id -> Text,
        chat_id -> BigInt,
        linked_at -> Timestamp,
        unreachable_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    suppressions (tenant_id, kind, digest) {
        tenant_id -> Text,
        kind -> Text,
        digest -> Binary,
        bounces -> Integer,
        suppressed -> Bool,
        reason -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        url -> Text,
        events -> Text,
        secret_version -> Integer,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tenant_branding (tenant_id) {
        tenant_id -> Text,
        display_name -> Nullable<Text>,
        accent_color -> Nullable<Text>,
        logo_type -> Nullable<Text>,
        logo -> Nullable<Binary>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    telegram_link_tokens (digest) {
        digest -> Binary,
        tenant_id -> Text,
        subject_id -> Text,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    telegram_chat_directory (chat_id, tenant_id, subject_id) {
        chat_id -> BigInt,
        tenant_id -> Text,
        subject_id -> Text,
        linked_at -> Timestamp,
    }
}

diesel::table! {
    telegram_chat_state (chat_id) {
        chat_id -> BigInt,
        language -> Nullable<Text>,
        state -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    telegram_updates (update_id) {
        update_id -> BigInt,
        received_at -> Timestamp,
    }
}

diesel::table! {
    surveys (tenant_id, code) {
        tenant_id -> Text,
        code -> Text,
        kind -> Text,
        question_ru -> Text,
        question_en -> Text,
        follow_up_ru -> Nullable<Text>,
        follow_up_en -> Nullable<Text>,
        purpose_code -> Text,
        anonymous -> Bool,
        answer_days -> Integer,
        change_hours -> Integer,
        trigger_delay_hours -> Nullable<Integer>,
        trigger_period_days -> Nullable<Integer>,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    survey_invitations (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        survey_code -> Text,
        subject_id -> Text,
        channel -> Text,
        notice_id -> Text,
        event_key -> Nullable<Text>,
        send_at -> Timestamp,
        expires_at -> Timestamp,
        score -> Nullable<Integer>,
        comment -> Nullable<Binary>,
        answered_channel -> Nullable<Text>,
        first_answered_at -> Nullable<Timestamp>,
        answered_at -> Nullable<Timestamp>,
        changes -> Integer,
        settled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    survey_anonymous_answers (tenant_id, survey_code, id) {
        tenant_id -> Text,
        survey_code -> Text,
        id -> Text,
        channel -> Text,
        score -> Integer,
        comment -> Nullable<Text>,
    }
}

// Invitations by filter select subjects by their consent state in a subquery.
diesel::allow_tables_to_appear_in_same_query!(
    subjects,
    consent_states,
    group_consent_states,
    purposes,
    group_purposes,
    objections
);

diesel::table! {
    banners (tenant_id, version) {
        tenant_id -> Text,
        version -> Integer,
        content -> Text,
        content_sha256 -> Text,
        origins -> Text,
        warnings -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    visitor_choices (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        visitor_id -> Text,
        previous -> Text,
        banner_version -> Integer,
        kind -> Text,
        form -> Nullable<Text>,
        granted -> Integer,
        refused -> Integer,
        form_answers -> Nullable<Text>,
        gpc -> Bool,
        lang -> Text,
        origin -> Text,
        evidence -> Nullable<Binary>,
        occurred_at -> Timestamp,
    }
}

diesel::table! {
    visitor_links (tenant_id, visitor_id) {
        tenant_id -> Text,
        visitor_id -> Text,
        subject_id -> Text,
        linked_at -> Timestamp,
    }
}

diesel::table! {
    rights_requests (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        subject_id -> Text,
        kind -> Text,
        status -> Text,
        channel -> Text,
        received_at -> Timestamp,
        due_at -> Timestamp,
        extended -> Bool,
        representative -> Bool,
        duplicate_of -> Nullable<Text>,
        details -> Nullable<Binary>,
        code -> Nullable<Binary>,
        code_expires_at -> Nullable<Timestamp>,
        code_failures -> Integer,
        code_failures_total -> Integer,
        reminded_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rights_request_events (tenant_id, request_id, seq) {
        tenant_id -> Text,
        request_id -> Text,
        seq -> Integer,
        step -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor -> Text,
        reason -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    rights_settings (tenant_id) {
        tenant_id -> Text,
        promise -> Nullable<Text>,
        days_off -> Text,
        working_days -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subject_changes (tenant_id, subject_id, seq) {
        tenant_id -> Text,
        subject_id -> Text,
        seq -> Integer,
        request_id -> Nullable<Text>,
        fields -> Text,
        previous -> Nullable<Binary>,
        actor -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    destruction_acts (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        kind -> Text,
        status -> Text,
        request_id -> Nullable<Text>,
        report_id -> Nullable<Text>,
        subject_ids -> Text,
        categories -> Text,
        method -> Text,
        reason -> Text,
        actor -> Text,
        notice_id -> Nullable<Text>,
        created_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rights_form_limits (tenant_id, email_index) {
        tenant_id -> Text,
        email_index -> Binary,
        wrong_codes -> Integer,
        codes_sent -> Integer,
        window_started_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    rights_decoys (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        email_index -> Binary,
        kind -> Text,
        code_failures -> Integer,
        code_expires_at -> Timestamp,
        created_at -> Timestamp,
        code_failures_total -> Integer,
    }
}

diesel::table! {
    job_schedule (job) {
        job -> Text,
        next_due_at -> Timestamp,
        claimed_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
    }
}

diesel::table! {
    telegram_send_slots (chat_id) {
        chat_id -> BigInt,
        next_at -> BigInt,
    }
}

diesel::table! {
    campaigns (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        name -> Text,
        kind -> Text,
        purpose_code -> Nullable<Text>,
        template -> Text,
        audience -> Text,
        channel -> Text,
        send_at -> Nullable<Timestamp>,
        rate_per_minute -> Integer,
        context -> Text,
        status -> Text,
        audience_size -> Nullable<BigInt>,
        ledger_seq -> Nullable<BigInt>,
        started_at -> Nullable<Timestamp>,
        paused_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subject_tags (tenant_id, subject_id, tag) {
        tenant_id -> Text,
        subject_id -> Text,
        tag -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(subject_tags, subjects);

diesel::table! {
    recipients (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        name -> Text,
        kind -> Text,
        country -> Text,
        cross_border -> Bool,
        adequate -> Bool,
        transfer_notice_filed_on -> Nullable<Date>,
        contract_number -> Nullable<Text>,
        contract_date -> Nullable<Date>,
        contract_until -> Nullable<Date>,
        purposes -> Text,
        data_categories -> Text,
        affiliate_tenant_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    disclosures (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        subject_id -> Text,
        recipient_id -> Text,
        recipient_name -> Text,
        recipient_kind -> Text,
        recipient_country -> Text,
        cross_border -> Bool,
        purpose_code -> Text,
        purpose_version -> Integer,
        legal_basis -> Text,
        data_categories -> Text,
        occurred_at -> Timestamp,
        recorded_at -> Timestamp,
        recorded_by -> Text,
        import_key -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(disclosures, recipients);
diesel::allow_tables_to_appear_in_same_query!(incident_deadlines, incidents);

diesel::table! {
    operator_details (tenant_id) {
        tenant_id -> Text,
        content -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    processing_filings (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        content -> Text,
        content_sha256 -> Text,
        filed_on -> Date,
        reference -> Nullable<Text>,
        recorded_at -> Timestamp,
        recorded_by -> Text,
    }
}

diesel::table! {
    calendar_years (country, year) {
        country -> Text,
        year -> Integer,
        days_off -> Text,
        working_weekends -> Text,
        source -> Text,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    purpose_document_settings (tenant_id, purpose_code) {
        tenant_id -> Text,
        purpose_code -> Text,
        for_dissemination -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consent_documents (tenant_id, purpose_code, version) {
        tenant_id -> Text,
        purpose_code -> Text,
        version -> Integer,
        sha256 -> Text,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    incidents (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        detected_at -> Timestamp,
        description -> Text,
        data_categories -> Text,
        affected_count -> BigInt,
        identifiers_count -> Nullable<BigInt>,
        jurisdiction -> Text,
        created_at -> Timestamp,
        recorded_by -> Text,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    incident_deadlines (tenant_id, incident_id, kind) {
        tenant_id -> Text,
        incident_id -> Text,
        kind -> Text,
        due_at -> Timestamp,
        met_at -> Nullable<Timestamp>,
        reminded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    incident_steps (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        incident_id -> Text,
        kind -> Text,
        taken_at -> Timestamp,
        reference -> Nullable<Text>,
        note -> Nullable<Text>,
        recorded_at -> Timestamp,
        recorded_by -> Text,
    }
}
