//! The peer's protocol rules as plain functions and state machines: no async, no locks,
//! no store handle, nothing from the network but the values passed in. `Client` asks
//! them and carries out their answers. So far the outbox ([`outbox`]: the order messages
//! go in, what a relay answer means for one, which key shares it proves given); the
//! inbox, group sending and receipts still decide inside `client/`.

pub(crate) mod outbox;
