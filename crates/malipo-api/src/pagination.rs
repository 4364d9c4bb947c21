//! One pagination convention for every list: newest first, `limit` (1–100,
//! default 10) and a `starting_after` cursor that is the last id seen.

use malipo_store::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const LIMIT_DEFAULT: u32 = 10;
pub const LIMIT_MAX: u32 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many objects to return, 1 to 100. Default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// An object id: return the objects created before it (the last id of
    /// the previous page).
    pub starting_after: Option<String>,
}

impl ListParams {
    /// Checks the parameters; `parse_id` checks that the cursor is an id of
    /// the listed resource.
    pub fn page_request<I, E>(
        &self,
        parse_id: impl Fn(&str) -> Result<I, E>,
    ) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(LIMIT_DEFAULT);
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("`limit` must be between 1 and {LIMIT_MAX}; it was {limit}."),
            ));
        }
        if let Some(cursor) = &self.starting_after
            && parse_id(cursor).is_err()
        {
            return Err(ApiError::invalid(
                "starting_after",
                format!("`starting_after` must be an id from this list; '{cursor}' is not."),
            ));
        }
        Ok(PageRequest {
            limit,
            starting_after: self.starting_after.clone(),
        })
    }
}

/// `{"object": "list", "data": [...], "has_more": bool}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<T>,
    /// True when more objects follow; pass the last id as `starting_after`.
    pub has_more: bool,
}

impl<T> List<T> {
    pub fn from_page<R>(page: Page<R>, to_out: impl Fn(R) -> T) -> Self {
        Self {
            object: "list",
            data: page.rows.into_iter().map(to_out).collect(),
            has_more: page.has_more,
        }
    }
}
