package ftp

// Reply codes (RFC 959 section 4.2 and its extensions). Each constant names
// the document and section that define it.
const (
	// StatusAboutToSend: file status okay; about to open data connection (RFC 959 4.2.2).
	StatusAboutToSend = 150
	// StatusCommandOK: command okay (RFC 959 4.2.2).
	StatusCommandOK = 200
	// StatusNotImplementedSuperfluous: command not implemented, superfluous at this site (RFC 959 4.2.2).
	StatusNotImplementedSuperfluous = 202
	// StatusSystemStatus: system status, or system help reply; also the FEAT reply (RFC 959 4.2.2, RFC 2389 3.2).
	StatusSystemStatus = 211
	// StatusDirectoryStatus: directory status (RFC 959 4.2.2).
	StatusDirectoryStatus = 212
	// StatusFileStatus: file status; also the SIZE and MDTM reply (RFC 959 4.2.2, RFC 3659 4.2, 3.2).
	StatusFileStatus = 213
	// StatusHelpMessage: help message (RFC 959 4.2.2).
	StatusHelpMessage = 214
	// StatusSystemType: NAME system type (RFC 959 4.2.2).
	StatusSystemType = 215
	// StatusReady: service ready for new user (RFC 959 4.2.2).
	StatusReady = 220
	// StatusClosing: service closing control connection (RFC 959 4.2.2).
	StatusClosing = 221
	// StatusDataConnectionOpen: data connection open; no transfer in progress (RFC 959 4.2.2).
	StatusDataConnectionOpen = 225
	// StatusClosingDataConnection: closing data connection; requested file action successful (RFC 959 4.2.2).
	StatusClosingDataConnection = 226
	// StatusPassiveMode: entering passive mode (h1,h2,h3,h4,p1,p2) (RFC 959 4.2.2).
	StatusPassiveMode = 227
	// StatusExtendedPassiveMode: entering extended passive mode (|||port|) (RFC 2428 3).
	StatusExtendedPassiveMode = 229
	// StatusLoggedIn: user logged in, proceed (RFC 959 4.2.2).
	StatusLoggedIn = 230
	// StatusNeedPassword: user name okay, need password (RFC 959 4.2.2).
	StatusNeedPassword = 331
	// StatusAuthOK: security data exchange complete; AUTH accepted (RFC 2228 4, RFC 4217 4.1).
	StatusAuthOK = 234
	// StatusFileActionOK: requested file action okay, completed (RFC 959 4.2.2).
	StatusFileActionOK = 250
	// StatusPathCreated: "PATHNAME" created (RFC 959 4.2.2).
	StatusPathCreated = 257
	// StatusUserOK: user name okay, need password (RFC 959 4.2.2).
	StatusUserOK = 331
	// StatusNeedAccount: need account for login (RFC 959 4.2.2).
	StatusNeedAccount = 332
	// StatusFileActionPending: requested file action pending further information (RFC 959 4.2.2).
	StatusFileActionPending = 350
	// StatusNotAvailable: service not available, closing control connection (RFC 959 4.2.2).
	StatusNotAvailable = 421
	// StatusCannotOpenDataConnection: can't open data connection (RFC 959 4.2.2).
	StatusCannotOpenDataConnection = 425
	// StatusTransferAborted: connection closed; transfer aborted (RFC 959 4.2.2).
	StatusTransferAborted = 426
	// StatusNeedSecurityResource: need some unavailable resource to process security (RFC 2228 4).
	StatusNeedSecurityResource = 431
	// StatusFileActionNotTaken: requested file action not taken; file unavailable (RFC 959 4.2.2).
	StatusFileActionNotTaken = 450
	// StatusLocalError: requested action aborted; local error in processing (RFC 959 4.2.2).
	StatusLocalError = 451
	// StatusInsufficientStorage: requested action not taken; insufficient storage space (RFC 959 4.2.2).
	StatusInsufficientStorage = 452
	// StatusSyntaxError: syntax error, command unrecognized; also a command line too long (RFC 959 4.2.2).
	StatusSyntaxError = 500
	// StatusSyntaxErrorParameters: syntax error in parameters or arguments (RFC 959 4.2.2).
	StatusSyntaxErrorParameters = 501
	// StatusNotImplemented: command not implemented (RFC 959 4.2.2).
	StatusNotImplemented = 502
	// StatusBadSequence: bad sequence of commands (RFC 959 4.2.2).
	StatusBadSequence = 503
	// StatusNotImplementedParameter: command not implemented for that parameter (RFC 959 4.2.2).
	StatusNotImplementedParameter = 504
	// StatusNetworkProtocolNotSupported: network protocol not supported (EPRT/EPSV) (RFC 2428 2, 3).
	StatusNetworkProtocolNotSupported = 522
	// StatusNotLoggedIn: not logged in (RFC 959 4.2.2); also USER/PASS before TLS when TLS is required (RFC 4217 6).
	StatusNotLoggedIn = 530
	// StatusNeedAccountForStoring: need account for storing files (RFC 959 4.2.2).
	StatusNeedAccountForStoring = 532
	// StatusPolicyDenied: request denied for policy reasons (RFC 2228 4).
	StatusPolicyDenied = 534
	// StatusProtLevelNotSupported: requested PROT level not supported by mechanism (RFC 2228 4).
	StatusProtLevelNotSupported = 536
	// StatusFileUnavailable: requested action not taken; file unavailable (RFC 959 4.2.2).
	StatusFileUnavailable = 550
	// StatusPageTypeUnknown: requested action aborted; page type unknown (RFC 959 4.2.2).
	StatusPageTypeUnknown = 551
	// StatusExceededStorage: requested file action aborted; exceeded storage allocation (RFC 959 4.2.2).
	StatusExceededStorage = 552
	// StatusFileNameNotAllowed: requested action not taken; file name not allowed (RFC 959 4.2.2).
	StatusFileNameNotAllowed = 553
)
