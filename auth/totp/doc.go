// Package totp is the RFC 6238 second factor: time-based one-time codes
// as authenticator apps make them (HMAC-SHA1, 6 digits, 30-second steps).
//
// It owns enrolment (NewKey: a random 160-bit secret and its otpauth://
// URI; QR draws the URI as a QR code for a terminal) and checking
// (Verifier: a code from the current step or one step either side of it,
// to allow for clock skew, accepted once per user and step; a replayed
// code is refused). The Verifier's memory of used codes is bounded and
// forgets steps that can no longer be accepted.
//
// Codes are computed by github.com/pquerna/otp. No error carries a code
// or a secret.
package totp
