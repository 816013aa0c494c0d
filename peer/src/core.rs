//! The peer's protocol rules as plain functions and state machines: no async, no locks,
//! no store handle, nothing from the network but the values passed in. `Client` asks
//! them and carries out their answers. So far the outbox ([`outbox`]: the order messages
//! go in, what a relay answer means for one, which key shares it proves given) and the
//! judging of an incoming 1:1 message ([`intake`]: shown, a receipt, or kept as
//! undecryptable; which ids a receipt may move); group intake, group sending and the
//! inbox's ordering still decide inside `client/`.

pub(crate) mod intake;
pub(crate) mod outbox;
