package ftp

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParsePASV(t *testing.T) {
	ap := netip.MustParseAddrPort("127.0.0.1:50000") // 195*256+80
	tests := []struct {
		text string
		want netip.AddrPort
	}{
		{"Entering Passive Mode (127,0,0,1,195,80).", ap},
		{"Entering Passive Mode (127,0,0,1,195,80)", ap},
		{"Entering Passive Mode 127,0,0,1,195,80", ap},
		{"=127,0,0,1,195,80", ap},
		{"127,0,0,1,195,80", ap},
		{"Entering Passive Mode (127, 0, 0, 1, 195, 80)", ap},
		{"Entering Passive Mode (127 ,0 , 0,1,195 , 80)", ap},
		{"Passive 2024 on (127,0,0,1,195,80)", ap},
		{"1,2 then 127,0,0,1,195,80", ap},
		{"1234,127,0,0,1,195,80", ap},
		{"Entering Passive Mode (010,000,000,001,195,080)", netip.MustParseAddrPort("10.0.0.1:50000")},
		{"(192,168,1,2,0,21)", netip.MustParseAddrPort("192.168.1.2:21")},
		{"(255,255,255,255,255,255)", netip.MustParseAddrPort("255.255.255.255:65535")},
		{"(0,0,0,0,4,1) behind NAT", netip.MustParseAddrPort("0.0.0.0:1025")},
		{"(1,2,3,4,5,6,7)", netip.MustParseAddrPort("1.2.3.4:1286")},
	}
	for _, tt := range tests {
		got, err := ParsePASV(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParsePASV(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
		}
	}
	for _, text := range []string{
		"", "Entering Passive Mode", "(127,0,0,1,195)", "(127,0,0,1,195,)", "(256,0,0,1,1,1)",
		"(127,0,0,1,195,256)", "(127,0,0,1,0,0)", "(127;0;0;1;195;80)", "(127,0,0,1,195,-80)",
		"(127,,0,0,1,195,80)", "(1270,0,0,1,195,80)", "(0127,0,0,1,195,80)",
	} {
		if got, err := ParsePASV(text); !errors.Is(err, ErrMalformedReply) {
			t.Errorf("ParsePASV(%q) = %v, %v; want ErrMalformedReply", text, got, err)
		}
	}
}

func TestFormatPASV(t *testing.T) {
	tests := []struct {
		ap      netip.AddrPort
		want    string
		wantErr bool
	}{
		{ap: netip.MustParseAddrPort("127.0.0.1:50000"), want: "Entering Passive Mode (127,0,0,1,195,80)."},
		{ap: netip.MustParseAddrPort("[::ffff:10.1.2.3]:21"), want: "Entering Passive Mode (10,1,2,3,0,21)."},
		{ap: netip.MustParseAddrPort("[2001:db8::1]:2121"), wantErr: true},
		{ap: netip.MustParseAddrPort("1.2.3.4:0"), wantErr: true},
		{ap: netip.AddrPort{}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := FormatPASV(tt.ap)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("FormatPASV(%v) = %q, %v; want %q", tt.ap, got, err, tt.want)
		}
	}
}

func TestParsePORT(t *testing.T) {
	tests := []struct {
		arg  string
		want netip.AddrPort
	}{
		{"127,0,0,1,195,80", netip.MustParseAddrPort("127.0.0.1:50000")},
		{" 127,0,0,1,195,80 ", netip.MustParseAddrPort("127.0.0.1:50000")},
		{"10, 0, 0, 1, 4, 0", netip.MustParseAddrPort("10.0.0.1:1024")},
	}
	for _, tt := range tests {
		got, err := ParsePORT(tt.arg)
		if err != nil || got != tt.want {
			t.Errorf("ParsePORT(%q) = %v, %v; want %v", tt.arg, got, err, tt.want)
		}
	}
	for _, arg := range []string{
		"", "127,0,0,1,195", "127,0,0,1,195,80,1", "(127,0,0,1,195,80)", "127,0,0,1,195,80.",
		"127,0,0,1,0,0", "256,0,0,1,1,1", "a,b,c,d,e,f", "127.0.0.1:21", "|1|127.0.0.1|21|",
	} {
		if got, err := ParsePORT(arg); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("ParsePORT(%q) = %v, %v; want ErrMalformedCommand", arg, got, err)
		}
	}
}

func TestFormatPORT(t *testing.T) {
	if got, err := FormatPORT(netip.MustParseAddrPort("192.0.2.7:65535")); err != nil || got != "192,0,2,7,255,255" {
		t.Errorf("FormatPORT = %q, %v", got, err)
	}
	if _, err := FormatPORT(netip.MustParseAddrPort("[::1]:21")); err == nil {
		t.Error("FormatPORT(IPv6): no error")
	}
}

func TestParseEPSV(t *testing.T) {
	tests := []struct {
		text string
		want uint16
	}{
		{"Entering Extended Passive Mode (|||6446|)", 6446},
		{"Entering Extended Passive Mode (|||6446|).", 6446},
		{"(!!!1!)", 1},
		{"(~~~65535~)", 65535},
		{"EPSV ok (|||00021|)", 21},
		{"junk (x) then (|||2121|)", 2121},
		{"((|||2121|)", 2121},
	}
	for _, tt := range tests {
		got, err := ParseEPSV(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParseEPSV(%q) = %d, %v; want %d", tt.text, got, err, tt.want)
		}
	}
	for _, text := range []string{
		"", "Entering Extended Passive Mode", "(|||0|)", "(|||65536|)", "(|||123456|)", "(||||)",
		"(|||6446|", "(|||6446)", "(|!|6446|)", "(|||64a6|)", "(   6446 )", "(111211)", "(|1|6446|)",
		"(|||6446!)", "(|||-1|)", "|||6446|",
	} {
		if got, err := ParseEPSV(text); !errors.Is(err, ErrMalformedReply) {
			t.Errorf("ParseEPSV(%q) = %d, %v; want ErrMalformedReply", text, got, err)
		}
	}
}

func TestFormatEPSV(t *testing.T) {
	if got := FormatEPSV(6446); got != "Entering Extended Passive Mode (|||6446|)" {
		t.Errorf("FormatEPSV = %q", got)
	}
}

func TestParseEPSVArg(t *testing.T) {
	tests := []struct {
		arg     string
		all     bool
		proto   int
		wantErr error
	}{
		{arg: ""},
		{arg: "ALL", all: true},
		{arg: "all", all: true},
		{arg: "aLl", all: true},
		{arg: "1", proto: 1},
		{arg: "2", proto: 2},
		{arg: "3", wantErr: ErrUnsupportedProtocol},
		{arg: "0", wantErr: ErrUnsupportedProtocol},
		{arg: "99999999999999999999999", wantErr: ErrUnsupportedProtocol},
		{arg: "ALLx", wantErr: ErrMalformedCommand},
		{arg: " 1", wantErr: ErrMalformedCommand},
		{arg: "-1", wantErr: ErrMalformedCommand},
		{arg: "1 ", wantErr: ErrMalformedCommand},
		{arg: "|1|", wantErr: ErrMalformedCommand},
	}
	for _, tt := range tests {
		all, proto, err := ParseEPSVArg(tt.arg)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseEPSVArg(%q) = %v, %d, %v; want %v", tt.arg, all, proto, err, tt.wantErr)
			}
			continue
		}
		if err != nil || all != tt.all || proto != tt.proto {
			t.Errorf("ParseEPSVArg(%q) = %v, %d, %v; want %v, %d", tt.arg, all, proto, err, tt.all, tt.proto)
		}
	}
}

func TestParseEPRT(t *testing.T) {
	tests := []struct {
		arg  string
		want netip.AddrPort
	}{
		{"|1|132.235.1.2|6275|", netip.MustParseAddrPort("132.235.1.2:6275")},
		{"|2|1080::8:800:200C:417A|5282|", netip.MustParseAddrPort("[1080::8:800:200c:417a]:5282")},
		{"!1!10.0.0.1!21!", netip.MustParseAddrPort("10.0.0.1:21")},
		{"~2~::1~65535~", netip.MustParseAddrPort("[::1]:65535")},
		{"|2|::ffff:10.0.0.1|21|", netip.MustParseAddrPort("[::ffff:10.0.0.1]:21")},
	}
	for _, tt := range tests {
		got, err := ParseEPRT(tt.arg)
		if err != nil || got != tt.want {
			t.Errorf("ParseEPRT(%q) = %v, %v; want %v", tt.arg, got, err, tt.want)
		}
	}
	bad := []struct {
		arg  string
		want error
	}{
		{"|3|132.235.1.2|6275|", ErrUnsupportedProtocol},
		{"|0|x|y|", ErrUnsupportedProtocol},
		{"|99|whatever|1|", ErrUnsupportedProtocol},
		{"", ErrMalformedCommand},
		{"|", ErrMalformedCommand},
		{"||||", ErrMalformedCommand},
		{"|1|132.235.1.2|6275", ErrMalformedCommand},
		{"|1|132.235.1.2|6275|x|", ErrMalformedCommand},
		{"|1|::1|6275|", ErrMalformedCommand},
		{"|2|132.235.1.2|6275|", ErrMalformedCommand},
		{"|1|132.235.1.2|0|", ErrMalformedCommand},
		{"|1|132.235.1.2|65536|", ErrMalformedCommand},
		{"|1|132.235.1.2||", ErrMalformedCommand},
		{"|1|132.235.1|21|", ErrMalformedCommand},
		{"|2|fe80::1%eth0|21|", ErrMalformedCommand},
		{"|x|1.2.3.4|21|", ErrMalformedCommand},
		{"1|1.2.3.4|21|1", ErrMalformedCommand},
		{" |1|1.2.3.4|21|", ErrMalformedCommand},
		{"|1|1.2.3.4|21!", ErrMalformedCommand},
	}
	for _, tt := range bad {
		if got, err := ParseEPRT(tt.arg); !errors.Is(err, tt.want) {
			t.Errorf("ParseEPRT(%q) = %v, %v; want %v", tt.arg, got, err, tt.want)
		}
	}
}

func TestFormatEPRT(t *testing.T) {
	tests := []struct {
		ap   netip.AddrPort
		want string
	}{
		{netip.MustParseAddrPort("132.235.1.2:6275"), "|1|132.235.1.2|6275|"},
		{netip.MustParseAddrPort("[1080::8:800:200C:417A]:5282"), "|2|1080::8:800:200c:417a|5282|"},
		{netip.MustParseAddrPort("[::ffff:10.0.0.1]:21"), "|1|10.0.0.1|21|"},
		{netip.MustParseAddrPort("[fe80::1%eth0]:21"), "|2|fe80::1|21|"},
	}
	for _, tt := range tests {
		if got := FormatEPRT(tt.ap); got != tt.want {
			t.Errorf("FormatEPRT(%v) = %q, want %q", tt.ap, got, tt.want)
		}
	}
}

func TestDataChannelRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:50000", "0.0.0.0:1", "255.255.255.255:65535", "[::ffff:192.0.2.1]:2121"} {
		ap := netip.MustParseAddrPort(s)
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		text, err := FormatPASV(ap)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParsePASV(text); err != nil || got != want {
			t.Errorf("PASV %v -> %q -> %v, %v", ap, text, got, err)
		}
		arg, err := FormatPORT(ap)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParsePORT(arg); err != nil || got != want {
			t.Errorf("PORT %v -> %q -> %v, %v", ap, arg, got, err)
		}
	}
	for _, s := range []string{"127.0.0.1:50000", "[::1]:1", "[2001:db8::ff]:65535", "[::ffff:192.0.2.1]:2121"} {
		ap := netip.MustParseAddrPort(s)
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		arg := FormatEPRT(ap)
		if got, err := ParseEPRT(arg); err != nil || got != want {
			t.Errorf("EPRT %v -> %q -> %v, %v", ap, arg, got, err)
		}
	}
	for _, port := range []uint16{1, 21, 6446, 65535} {
		if got, err := ParseEPSV(FormatEPSV(port)); err != nil || got != port {
			t.Errorf("EPSV %d -> %d, %v", port, got, err)
		}
	}
}
