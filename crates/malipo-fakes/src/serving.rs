//! What every fake does alike: serve its router on 127.0.0.1, and (for
//! their tests) a tiny callback receiver.

use axum::Router;

/// Serves `router` on 127.0.0.1 at a free port, in a task; returns the base
/// URL (`http://127.0.0.1:PORT`). `name` names the fake in the log if it
/// stops.
pub async fn spawn(router: Router, name: &'static str) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::warn!(%error, "the {name} fake stopped serving");
        }
    });
    Ok(format!("http://{address}"))
}

#[cfg(test)]
pub mod receiver {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::Request;
    use axum::http::{HeaderMap, StatusCode};

    /// What a callback receiver got: method, headers, body.
    pub type Received = Arc<Mutex<Vec<(String, HeaderMap, String)>>>;

    /// A receiver on 127.0.0.1 that answers 200 to anything; returns the
    /// URL of `path` on it and what it receives.
    pub async fn spawn(path: &str) -> (String, Received) {
        let received: Received = Arc::default();
        let store = received.clone();
        let app = Router::new().fallback(move |request: Request| {
            let store = store.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                store.lock().unwrap().push((
                    parts.method.to_string(),
                    parts.headers,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}{path}"), received)
    }
}
