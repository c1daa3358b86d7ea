// Package hold is the buffer of a held download (inspect.downloads: hold):
// the gateway reads a download whole from the backend into a Buffer while
// the inspection filters see it, and releases the held bytes to the client
// only once every filter has judged it clean. A Buffer keeps up to
// Config.MemoryBytes in memory and spills the rest to a temporary file,
// created 0600 in Config.Dir and unlinked at once, so that nothing is left
// behind whatever way the process ends; it refuses to hold more than
// Config.MaxBytes (ErrTooLarge). It knows nothing of FTP: the session
// (package proxy) drives it.
package hold
