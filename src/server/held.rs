//! A response body that holds its HTTP/2 stream's place in the caps until
//! the stream ends (its body is dropped).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use super::gate::Place;

pub struct Held<B> {
    body: B,
    _place: Option<Place>,
}

impl<B> Held<B> {
    pub fn new(body: B, place: Option<Place>) -> Held<B> {
        Held { body, _place: place }
    }
}

impl<B: Body + Unpin> Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
