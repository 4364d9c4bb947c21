//! A small builder for SQL whose shape depends on the request (optional
//! filters, multi-row inserts): it numbers `$n` placeholders and keeps the
//! values beside them, so every value is bound, never spliced into the text.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use crate::Backend;

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(String),
    Integer(i64),
    NullText,
    NullInteger,
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}
impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}
impl From<i64> for Value {
    fn from(integer: i64) -> Self {
        Value::Integer(integer)
    }
}
impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Self {
        text.map_or(Value::NullText, Value::Text)
    }
}
impl From<Option<i64>> for Value {
    fn from(integer: Option<i64>) -> Self {
        integer.map_or(Value::NullInteger, Value::Integer)
    }
}

#[derive(Debug)]
pub(crate) struct Sql {
    backend: Backend,
    text: String,
    values: Vec<Value>,
}

/// Placeholders one statement may carry (SQLite allows 32,766, PostgreSQL 65,535).
pub(crate) const PLACEHOLDERS_MAX: usize = 30_000;

impl Sql {
    pub(crate) fn new(backend: Backend, text: &str) -> Self {
        Self {
            backend,
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`. SQLite gets `?`: binding a
    /// numbered placeholder makes it search its list of names each time,
    /// which turns a statement with thousands of values quadratic.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.values.len().to_string());
            }
        }
        self
    }

    /// Appends `(…), (…)` with one placeholder per value.
    pub(crate) fn bind_rows<R: IntoIterator<Item = Value>>(
        &mut self,
        rows: impl IntoIterator<Item = R>,
    ) -> &mut Self {
        for (index, row) in rows.into_iter().enumerate() {
            self.push(if index == 0 { "(" } else { ", (" });
            for (column, value) in row.into_iter().enumerate() {
                if column > 0 {
                    self.push(", ");
                }
                self.bind(value);
            }
            self.push(")");
        }
        self
    }

    /// Appends `(…)` listing placeholders for `values`, for `IN`.
    pub(crate) fn bind_list<V: Into<Value>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        self.push("(");
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.as_str()));
        for value in &self.values {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Integer(integer) => query.bind(*integer),
                Value::NullText => query.bind(None::<String>),
                Value::NullInteger => query.bind(None::<i64>),
            };
        }
        query
    }
}
