package testvsftpd

import "strconv"

// BaseConf is the configuration every vsftpd of the tests and the bench
// shares: in the foreground on listenIP:port, local users (PAM) only,
// serving root (secure_chroot_dir empty), passive ports pasvLo-pasvHi, and
// none of the sandboxing that containers forbid. Callers append their own
// lines (banner, logging, limits, TLS).
func BaseConf(listenIP string, port int, root, empty string, pasvLo, pasvHi int) []string {
	return []string{
		"listen=YES",
		"listen_ipv6=NO",
		"background=NO",
		"listen_address=" + listenIP,
		"listen_port=" + strconv.Itoa(port),
		"anonymous_enable=NO",
		"local_enable=YES",
		"write_enable=YES",
		"local_umask=022",
		"local_root=" + root,
		"chroot_local_user=NO",
		"pam_service_name=vsftpd",
		"secure_chroot_dir=" + empty,
		// Containers often forbid seccomp filters and new namespaces.
		"seccomp_sandbox=NO",
		"isolate=NO",
		"isolate_network=NO",
		"connect_from_port_20=NO",
		"pasv_enable=YES",
		"pasv_min_port=" + strconv.Itoa(pasvLo),
		"pasv_max_port=" + strconv.Itoa(pasvHi),
	}
}

// TLSConf is explicit FTPS with vsftpd's strict settings: TLS required for
// login and data, and require_ssl_reuse=YES (data connections must resume
// the control session), with the certificate chain and key given.
func TLSConf(chainFile, keyFile string) []string {
	return []string{
		"ssl_enable=YES",
		"allow_anon_ssl=NO",
		"force_local_logins_ssl=YES",
		"force_local_data_ssl=YES",
		"require_ssl_reuse=YES",
		// vsftpd 3.0.3 (Debian 12) knows ssl_sslv2/ssl_sslv3/ssl_tlsv1
		// only: TLS 1.2 (and 1.3) are on; an unknown key such as
		// ssl_tlsv1_2 makes it refuse to start.
		"ssl_sslv2=NO",
		"ssl_sslv3=NO",
		"ssl_tlsv1=YES",
		// The 3.0.3 default, DES-CBC3-SHA, is gone from OpenSSL 3 and Go.
		"ssl_ciphers=HIGH",
		"rsa_cert_file=" + chainFile,
		"rsa_private_key_file=" + keyFile,
	}
}
