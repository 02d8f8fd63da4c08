//! Domain values stored as text, read and written by diesel on every backend.
//!
//! A value read back is parsed with the type's own `FromStr`: a word outside its set
//! is a deserialisation error of that row, never a silent default (a status, a role
//! or a time zone that nobody wrote must not turn into one that somebody might have).

/// `FromSql`/`ToSql` as `Text` for a type that has `FromStr` and an `as_str(&self)`.
/// The type also derives `diesel::AsExpression` and `diesel::FromSqlRow` with
/// `#[diesel(sql_type = Text)]`. Generic over the backend, so it holds for
/// PostgreSQL, SQLite and the store's connection over both.
#[macro_export]
macro_rules! impl_text_sql {
    ($name:ty) => {
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                use diesel::deserialize::FromSql;
                let text: String = FromSql::<diesel::sql_types::Text, DB>::from_sql(bytes)?;
                text.parse::<$name>()
                    .map_err(|e| format!(concat!("stored ", stringify!($name), ": {}"), e).into())
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }
    };
}
