// Package dlp is the gateway's built-in data loss prevention: detectors
// that read a transfer's bytes as they stream, with bounded state per
// transfer, and a filter.Filter that alerts on or blocks a transfer whose
// counts pass their thresholds.
//
// The detectors:
//
//   - cards: payment card numbers, 13 to 19 digits, optionally grouped by
//     single spaces or dashes, with a known issuer prefix (IIN) and a valid
//     Luhn check digit, standing alone (no letter or digit around them);
//   - ibans: a country code, two check digits and the country's BBAN
//     length, optionally in groups of four separated by single spaces,
//     mod-97 checked;
//   - ssns: US social security numbers written AAA-GG-SSSS, without the
//     numbers never issued (area 000, 666, 900-999; group 00; serial 0000);
//   - emails: addresses (local@domain.tld), counted for "in bulk" thresholds;
//   - keywords: a list of words, matched case-insensitively (ASCII case
//     folding) as substrings by an Aho-Corasick automaton;
//   - patterns: Go regular expressions, each run on bounded windows of the
//     stream: a line (up to '\n'), and a line longer than the window
//     (patterns_window bytes) is cut into windows at fixed stream offsets;
//     a match across such a cut is not seen;
//   - file_types: the type named by the magic bytes at the start of the
//     stream (executables: elf, pe, macho; archives: zip, rar, 7z, gzip,
//     tar), to deny a type whatever the file's name.
//
// The digit and address detectors find the tokens they may count 64
// bytes at a time, in bitmaps of the digits, separators, letters and '@'
// (blocks.go: the short numbers alone of a CSV file are not looked at one
// by one), then in a chunk's last bytes the bytes '0'-'9' and '@' eight
// at a time, and parse the token around each; a token cut by a chunk
// boundary is finished in the next chunk from a carried tail of at most a
// few hundred bytes. Counts do not depend on how
// the stream is cut into writes.
//
// A gzip-compressed upload (magic 1f 8b) is inspected decompressed, fed
// incrementally; the decompressed volume is bounded (gzip.max_bytes): a
// stream past the bound, or one that does not decompress, is the "gzip"
// detector's finding.
package dlp
