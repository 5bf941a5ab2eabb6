//! HTTP/2 frame attribution (`wire::h2`): the frame headers and HPACK
//! header blocks a client sends, decoded by the server to learn each
//! stream's transport — untrusted bytes, read in any pieces.
//!
//! Input: a cut count, cut offsets (two bytes each), the client's bytes;
//! the server's bytes are the same, mirrored. Properties: no panic (HPACK
//! decoding of garbage included); every byte is attributed to exactly one
//! transport: the counted totals equal the bytes fed, both ways, however
//! the input was cut.
#![no_main]

use feedgate::fuzz_api::attribute_h2;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cuts, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(cuts % 8);
    let Some((cut_bytes, input)) = rest.split_at_checked(2 * n) else {
        return;
    };
    let cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
        .collect();
    let mut read = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    read.extend_from_slice(input);
    let (counted_in, counted_out) = attribute_h2(&read, input, &cuts);
    assert_eq!(counted_in, read.len() as u64, "read bytes lost or doubled");
    assert_eq!(
        counted_out,
        input.len() as u64,
        "written bytes lost or doubled"
    );
    let whole = attribute_h2(&read, input, &[]);
    assert_eq!(whole, (counted_in, counted_out));
});
