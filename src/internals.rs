//! Not public API: the item encoding and the journal's record framing, exposed for the fuzz
//! targets and the CLI's tests. Anything here may change in any release.

pub use crate::codec::{decode as decode_item, encode as encode_item, DecodeError, EncodeError};
pub use crate::journal::record::{Op, Record, TableState};
pub use crate::warm::{decode as decode_warm_keys, encode as encode_warm_keys, Saved as SavedKeys};

use crate::error::{Error, Result};
use crate::journal::{decode_record as decode_frame, encode_record as encode_frame, FrameError};

/// Appends `record`'s frame (length, CRC32C, payload) to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<()> {
    encode_frame(record, out).map_err(|e| Error::journal("cannot encode the record", e))
}

/// Reads the frame at the start of `input`; returns the record and the frame's length. Fails
/// with [`Error::Journal`] on an incomplete or damaged frame; never panics.
pub fn decode_record(input: &[u8]) -> Result<(Record, usize)> {
    decode_frame(input).map_err(|e| Error::Journal {
        message: match e {
            FrameError::Incomplete => "the record is incomplete".to_string(),
            FrameError::Corrupt { reason, .. } => format!("the record is damaged: {reason}"),
            FrameError::Newer { reason } => {
                format!("the record is of a later format than this version reads: {reason}")
            }
        },
        source: None,
    })
}
