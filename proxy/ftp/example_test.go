package ftp_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

func ExampleReader_ReadCommand() {
	// A client aborting a transfer: Telnet IP and Synch before ABOR.
	r := ftp.NewReader(strings.NewReader("PASS hunter2\r\n\xff\xf4\xff\xf2ABOR\r\n"))
	for {
		c, err := r.ReadCommand()
		if err != nil {
			break
		}
		fmt.Println(c.LogString())
	}
	// Output:
	// PASS ****
	// ABOR
}

func ExampleReader_ReadReply() {
	r := ftp.NewReader(strings.NewReader("211-Features:\r\n EPSV\r\n REST STREAM\r\n211 End\r\n"))
	rep, err := r.ReadReply()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range ftp.ParseFeatures(rep) {
		fmt.Println(ftp.FeatureName(f))
	}
	// Output:
	// EPSV
	// REST
}

func ExampleWriteReply() {
	text, err := ftp.FormatPASV(netip.MustParseAddrPort("203.0.113.9:50000"))
	if err != nil {
		fmt.Println(err)
		return
	}
	var wire strings.Builder
	_ = ftp.WriteReply(&wire, ftp.NewReply(ftp.StatusPassiveMode, text))
	_ = ftp.WriteReply(&wire, ftp.NewReply(ftp.StatusExtendedPassiveMode, ftp.FormatEPSV(50000)))
	_ = ftp.WriteReply(&wire, ftp.NewReply(ftp.StatusLoggedIn, "Welcome\n230 is not the end\nLogged in"))
	fmt.Printf("%q\n", wire.String())
	// Output:
	// "227 Entering Passive Mode (203,0,113,9,195,80).\r\n229 Entering Extended Passive Mode (|||50000|)\r\n230-Welcome\r\n 230 is not the end\r\n230 Logged in\r\n"
}

func ExampleParsePASV() {
	// The backend's wording varies; only the six numbers count.
	ap, err := ftp.ParsePASV("Entering Passive Mode 10,0,0,5,19,137")
	fmt.Println(ap, err)
	// Output: 10.0.0.5:5001 <nil>
}
