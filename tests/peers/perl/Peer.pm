# What the Net::SMPP SMSC and ESME share: command-line options, the JSON event
# lines they print, TLVs as hex, and the GSM 03.38 and UCS-2 codings (Net::SMPP
# leaves text encoding to its caller).
package Peer;
use strict;
use warnings;
use utf8;
use Encode ();
use JSON::PP ();
use Exporter 'import';
our @EXPORT_OK = qw(parse_options emit fail tlv_hex);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

# Parse `--name value`, `--flag` and `--no-flag` against defaults.
# Options named in `repeated` collect every value in an array.
sub parse_options {
    my ($argv, $defaults, %how) = @_;
    my %flag = map { $_ => 1 } @{ $how{flags} // [] };
    my %repeated = map { $_ => 1 } @{ $how{repeated} // [] };
    my %opt = (%$defaults, map { $_ => [] } keys %repeated);
    my @args = @$argv;
    while (@args) {
        my $arg = shift @args;
        fail("unexpected argument $arg") unless $arg =~ /^--(.+)$/;
        my $name = $1;
        if ($flag{$name}) {
            $opt{$name} = 1;
        } elsif ($name =~ /^no-(.+)$/ && $flag{$1}) {
            $opt{$1} = 0;
        } elsif (exists $defaults->{$name} || $repeated{$name}) {
            fail("$arg needs a value") unless @args;
            my $value = shift @args;
            if (!$repeated{$name} && $defaults->{$name} =~ /^\d+(\.\d+)?$/) {
                fail("$arg needs a number >= 0") unless $value =~ /^\d+(\.\d+)?$/;
                $value += 0;
            }
            $repeated{$name} ? push(@{ $opt{$name} }, $value) : ($opt{$name} = $value);
        } else {
            fail("unknown option $arg");
        }
    }
    return %opt;
}

sub fail {
    print STDERR "$_[0]\n";
    exit 2;
}

# One event as one JSON line on stdout.
sub emit {
    my ($event, %fields) = @_;
    local $| = 1;
    print $JSON->encode({ event => $event, %fields }), "\n";
}

sub json_decode { $JSON->decode($_[0]) }

# Read what stdin has (select said it is readable) and call $handle with each
# JSON object of a whole line; false at end of input.
my $stdin_buffer = '';
sub read_json_lines {
    my ($handle) = @_;
    my $n = sysread STDIN, $stdin_buffer, 65536, length $stdin_buffer;
    return 0 unless $n;
    while ($stdin_buffer =~ s/^([^\n]*)\n//) {
        my $line = $1;
        next unless $line =~ /\S/;
        my $value = eval { json_decode($line) };
        $value ? $handle->($value) : emit('error', message => "not JSON: $line");
    }
    return 1;
}
sub json_encode { $JSON->encode($_[0]) }

# The TLVs of a PDU read by Net::SMPP (it keeps each value under its numeric tag).
sub tlv_hex {
    my ($pdu) = @_;
    my %out;
    for my $key (grep { /^\d+$/ } keys %$pdu) {
        $out{ sprintf '0x%04x', $key } = unpack 'H*', $pdu->{$key};
    }
    return \%out;
}

my $BASIC = "\@£\$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x{1B}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    . "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
my %EXTENSION = ("\f" => 0x0A, '^' => 0x14, '{' => 0x28, '}' => 0x29, '\\' => 0x2F,
                 '[' => 0x3C, '~' => 0x3D, ']' => 0x3E, '|' => 0x40, '€' => 0x65);
my %TO_GSM;
$TO_GSM{ substr($BASIC, $_, 1) } = $_ for 0 .. length($BASIC) - 1;
delete $TO_GSM{"\x{1B}"};
my %FROM_GSM = reverse %TO_GSM;
my %FROM_EXTENSION = reverse %EXTENSION;

# Text as GSM 03.38 septets, one per octet (SMPP's data_coding 0); undef if
# a character has no GSM form.
sub gsm_encode {
    my ($text) = @_;
    my $out = '';
    for my $char (split //, $text) {
        if (exists $TO_GSM{$char}) {
            $out .= chr $TO_GSM{$char};
        } elsif (exists $EXTENSION{$char}) {
            $out .= "\x1B" . chr $EXTENSION{$char};
        } else {
            return undef;
        }
    }
    return $out;
}

sub gsm_decode {
    my ($bytes) = @_;
    my $out = '';
    my @octets = unpack 'C*', $bytes;
    while (@octets) {
        my $octet = shift(@octets) & 0x7F;
        if ($octet == 0x1B && @octets) {
            my $next = shift @octets;
            $out .= $FROM_EXTENSION{$next} // ' ';
        } else {
            $out .= $FROM_GSM{$octet} // '?';
        }
    }
    return $out;
}

sub ucs2_encode { Encode::encode('UTF-16BE', $_[0]) }
sub ucs2_decode { Encode::decode('UTF-16BE', $_[0]) }

1;
