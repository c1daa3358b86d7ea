package ftp

import "strings"

// knownVerbs are the commands of the FTP standards and of the extensions
// that servers and clients commonly use. LogString logs the arguments of
// these only.
var knownVerbs = map[string]bool{}

func init() {
	for _, list := range []string{
		// RFC 959
		"USER PASS ACCT CWD CDUP SMNT QUIT REIN PORT PASV TYPE STRU MODE RETR STOR STOU APPE ALLO REST RNFR RNTO ABOR DELE RMD MKD PWD LIST NLST SITE SYST STAT HELP NOOP",
		"XCWD XCUP XMKD XRMD XPWD",             // RFC 775
		"LPRT LPSV",                            // RFC 1639
		"AUTH ADAT PROT PBSZ CCC MIC CONF ENC", // RFC 2228, RFC 4217
		"FEAT OPTS",                            // RFC 2389
		"EPRT EPSV",                            // RFC 2428
		"LANG",                                 // RFC 2640
		"MDTM SIZE MLST MLSD",                  // RFC 3659
		"HOST",                                 // RFC 7151
		// Drafts and common extensions.
		"MFMT MFCT MFF HASH RANG CLNT AVBL DSIZ CSID XCRC XMD5 XSHA XSHA1 XSHA256 XSHA512 SPSV CPSV SSCN ESTA ESTP",
	} {
		for _, v := range strings.Fields(list) {
			knownVerbs[v] = true
		}
	}
}

// KnownVerb reports whether verb, in any case, is a command of the FTP
// standards (RFC 959, 775, 1639, 2228, 2389, 2428, 2640, 3659, 4217, 7151)
// or a common extension (MFMT, HASH, XCRC, ...).
func KnownVerb(verb string) bool {
	if knownVerbs[verb] {
		return true
	}
	return knownVerbs[strings.ToUpper(verb)]
}
