//! `POST /api/v1/admin/reload` (API token): re-reads the config file, as
//! SIGHUP does. 200 with what changed; 422 with `check-config`'s message
//! when the file is refused (the running config stays); 409 for a server
//! started without `--config` (which has no tokens, so only in principle).

use std::sync::Arc;

use hyper::{Request, StatusCode};
use serde_json::json;

use super::RequestBody;
use super::auth::authorize_write;
use super::errors;
use super::private::still_allowed;
use super::response::{self, HttpResponse};
use crate::app::App;
use crate::app::reload::Refused;

pub async fn reload(app: &Arc<App>, req: &Request<RequestBody>) -> HttpResponse {
    if let Err(denied) = authorize_write(&app.config(), req.headers()) {
        return errors::text(&denied);
    }
    // The reload runs in a task of its own: a client that goes away
    // half-way cannot leave it half-applied.
    match app.reload(still_allowed).await {
        Ok(done) => response::json(StatusCode::OK, &json!({ "reloaded": true, "changes": done })),
        Err(Refused::NoFile) => response::json_error(StatusCode::CONFLICT, &Refused::NoFile.to_string()),
        Err(refused) => response::json_error(StatusCode::UNPROCESSABLE_ENTITY, &refused.to_string()),
    }
}
