//! A small HTTP/1.1 upstream on loopback for polled-source tests: answers
//! each path with what the test set (status, extra headers, body), counts
//! requests per path, keeps the last request head per path (what a client
//! sent it), and can be stopped and started again on its port.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(body: impl Into<Vec<u8>>) -> Answer {
        Answer { status: 200, headers: vec![], body: body.into() }
    }
    pub fn redirect(to: &str) -> Answer {
        Answer { status: 302, headers: vec![("Location".into(), to.into())], body: vec![] }
    }
}

#[derive(Default)]
struct State {
    answers: HashMap<String, Answer>,
    hits: HashMap<String, u64>,
    heads: HashMap<String, String>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Option<JoinHandle<()>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let task = Some(tokio::spawn(serve(listener, state.clone())));
        Upstream { addr, state, task }
    }

    pub fn set(&self, path: &str, answer: Answer) {
        self.state.lock().unwrap().answers.insert(path.to_string(), answer);
    }

    pub fn hits(&self, path: &str) -> u64 {
        self.state.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    /// Stops answering: connections are refused.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Answers again, on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.task = Some(tokio::spawn(serve(listener, self.state.clone())));
    }

    /// The head of the last request for `path`, as received.
    pub fn last_head(&self, path: &str) -> Option<String> {
        self.state.lock().unwrap().heads.get(path).cloned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let Some(head) = framecast_load::read_head(&mut stream).await else { return };
            let text = String::from_utf8_lossy(&head);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
            let answer = {
                let mut state = state.lock().unwrap();
                *state.hits.entry(path.clone()).or_default() += 1;
                state.heads.insert(path.clone(), text.to_string());
                state.answers.get(&path).cloned()
            };
            let answer = answer.unwrap_or(Answer { status: 404, headers: vec![], body: b"not here".to_vec() });
            let mut out = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                answer.status,
                answer.body.len()
            );
            for (k, v) in &answer.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes()).await;
            let _ = stream.write_all(&answer.body).await;
            let _ = stream.shutdown().await;
        });
    }
}
