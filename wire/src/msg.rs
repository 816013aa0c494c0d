//! Protocol messages: [`request`] (peer → relay), [`response`] (relay → peer, one per
//! request) and [`push`] (relay → peer on the event stream).

pub mod push;
pub mod request;
pub mod response;
