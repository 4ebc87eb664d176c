//! `raw_receiver`: a TCP endpoint that reads a request and then misbehaves
//! (resets, drips, hangs) with the socket, for the hostile-receiver tests.

use tokio::net::TcpListener;

/// A raw TCP endpoint on 127.0.0.1 that reads a request and then does
/// `misbehave` with the socket.
pub async fn raw_receiver<F, Fut>(misbehave: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let misbehave = std::sync::Arc::new(misbehave);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let misbehave = misbehave.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // Read until the end of the headers (bodies here are small).
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                misbehave(sock).await;
            });
        }
    });
    format!("http://{addr}/hostile")
}
