//! The screens, one module each.

pub mod call;
pub mod contacts;
pub mod conversation;
pub mod groups;
pub mod moments;
pub mod profile;
pub mod rows;
