#!/usr/bin/perl
# An ESME built on Perl's Net::SMPP (Debian libnet-smpp-perl), for testing an
# SMPP server (smsgate's simulator, smsgate's customer-facing server) with a
# client it did not write. Options and event lines are described in
# tests/peers/README.md; the npm-smpp ESME (../node/esme.js) takes the same ones.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IO::Select;
use Time::HiRes qw(time);
use Net::SMPP;
use Peer qw(parse_options emit fail tlv_hex);

my %opt = parse_options(\@ARGV, {
    host => '127.0.0.1',
    port => 2775,
    'system-id' => 'smsgate',
    password => 'secret',
    mode => 'transceiver',
    window => 10,
    responses => 0,
    delivers => 0,
    seconds => 0,
    'enquire-link-ms' => 0,
    ack => 1,
}, flags => ['ack'], repeated => ['message']);
my %BIND = (transceiver => 'bind_transceiver', transmitter => 'bind_transmitter', receiver => 'bind_receiver');
fail('--mode must be transceiver, transmitter or receiver') unless $BIND{ $opt{mode} };

use constant { GSM_SINGLE => 160, GSM_PART => 153, UCS2_SINGLE => 140, UCS2_PART => 134 };

my $smpp = Net::SMPP->new_connect($opt{host}, port => $opt{port}, async => 1, smpp_version => 0x34)
    or do { emit('closed', message => "cannot connect: $!"); exit 1 };
my $select = IO::Select->new($smpp, \*STDIN);
my (@queue, %in_flight, $bound, $stopping, $stop_deadline, $bind_seq, $unbind_seq);
my %counts = (submitted => 0, responses => 0, delivers => 0);
my $reference = 0;
my $index = 0;
my $started = time;
my $next_enquire = $opt{'enquire-link-ms'} ? time + $opt{'enquire-link-ms'} / 1000 : undef;

# The submit_sm field sets (one per part) of a message given as JSON.
sub parts_of {
    my ($message, $message_index) = @_;
    my $from = $message->{from} // 'SHOP';
    my %base = (
        source_addr => $from, source_addr_ton => ($from =~ /^\d+$/ ? 1 : 5),
        source_addr_npi => ($from =~ /^\d+$/ ? 1 : 0),
        destination_addr => "$message->{to}", dest_addr_ton => 1, dest_addr_npi => 1,
        registered_delivery => $message->{registered_delivery} // 1,
    );
    my $label = $message->{id} // $message_index;
    if (defined $message->{hex}) {
        return { %base, esm_class => $message->{esm_class} // 0, data_coding => $message->{data_coding} // 0,
                 short_message => pack('H*', $message->{hex}), label => $label, part => 1, parts => 1 };
    }
    my $text = $message->{text};
    my $coding = $message->{coding} // (defined Peer::gsm_encode($text) ? 'gsm' : 'ucs2');
    my $gsm = $coding eq 'gsm';
    my $bytes = $gsm ? Peer::gsm_encode($text) : Peer::ucs2_encode($text);
    fail("text has no GSM form: $text") unless defined $bytes;
    my $data_coding = $gsm ? 0 : 8;
    if (length($bytes) <= ($gsm ? GSM_SINGLE : UCS2_SINGLE)) {
        return { %base, esm_class => 0, data_coding => $data_coding, short_message => $bytes,
                 label => $label, part => 1, parts => 1 };
    }
    my @chunks;
    my $at = 0;
    while ($at < length $bytes) {
        my $end = $at + ($gsm ? GSM_PART : UCS2_PART);
        $end = length $bytes if $end > length $bytes;
        if ($end < length $bytes) {
            $end -= 1 if $gsm && substr($bytes, $end - 1, 1) eq "\x1B";    # keep an escape with its character
            $end -= 2 if !$gsm && (ord(substr($bytes, $end - 2, 1)) & 0xFC) == 0xD8;    # keep a surrogate pair
        }
        push @chunks, substr($bytes, $at, $end - $at);
        $at = $end;
    }
    $reference = ($reference + 1) & 0xFF;
    my $total = @chunks;
    return map {
        { %base, esm_class => 0x40, data_coding => $data_coding,
          short_message => pack('C6', 5, 0, 3, $reference, $total, $_ + 1) . $chunks[$_],
          label => $label, part => $_ + 1, parts => $total }
    } 0 .. $#chunks;
}

sub enqueue {
    push @queue, parts_of($_[0], $index++);
    pump();
}

sub pump {
    while ($bound && !$stopping && keys(%in_flight) < $opt{window} && @queue) {
        my $part = shift @queue;
        my %fields = %$part;
        delete @fields{qw(label part parts)};
        my $seq = $smpp->submit_sm(%fields);
        $in_flight{$seq} = $part;
        $counts{submitted}++;
        emit('submit_sm', sequence => $seq + 0, index => $part->{label}, part => $part->{part},
             parts => $part->{parts}, destination => $part->{destination_addr});
    }
}

sub check_done {
    my @wanted;
    push @wanted, $counts{responses} >= $opt{responses} if $opt{responses};
    push @wanted, $counts{delivers} >= $opt{delivers} if $opt{delivers};
    unbind() if @wanted && !grep { !$_ } @wanted;
}

sub unbind {
    return if $stopping;
    $stopping = 1;
    finish(0) unless $bound;
    $unbind_seq = $smpp->unbind();
    $stop_deadline = time + 2;
}

sub finish {
    my ($code) = @_;
    emit('unbound', %counts, in_flight => scalar keys %in_flight);
    $smpp->close;
    exit $code;
}

sub on_pdu {
    my ($pdu) = @_;
    my $cmd = $pdu->{cmd};
    if ($cmd == 0x80000001 || $cmd == 0x80000002 || $cmd == 0x80000009) {
        return unless defined $bind_seq && $pdu->{seq} == $bind_seq;
        emit('ready', impl => 'perl', mode => $opt{mode}, status => $pdu->{status} + 0,
             system_id => $pdu->{system_id} // '');
        if ($pdu->{status}) {
            $smpp->close;
            exit 3;
        }
        $bound = 1;
        enqueue(Peer::json_decode($_)) for @{ $opt{message} };
        pump();
        check_done();
    } elsif ($cmd == 0x80000004) {
        my $part = delete $in_flight{ $pdu->{seq} } or return;
        $counts{responses}++;
        emit('submit_sm_resp', sequence => $pdu->{seq} + 0, index => $part->{label}, part => $part->{part},
             status => $pdu->{status} + 0, message_id => $pdu->{message_id});
        pump();
        check_done();
    } elsif ($cmd == 0x00000005) {
        $counts{delivers}++;
        my $bytes = length($pdu->{short_message}) ? $pdu->{short_message} : ($pdu->{0x0424} // '');
        emit('deliver_sm', sequence => $pdu->{seq} + 0, source => $pdu->{source_addr},
             destination => $pdu->{destination_addr}, esm_class => $pdu->{esm_class} + 0,
             data_coding => $pdu->{data_coding} + 0, short_message => unpack('H*', $bytes),
             text => text_of($pdu, $bytes), tlvs => tlv_hex($pdu));
        $smpp->deliver_sm_resp(seq => $pdu->{seq}, message_id => '') if $opt{ack};
        check_done();
    } elsif ($cmd == 0x00000015) {
        emit('enquire_link', sequence => $pdu->{seq} + 0);
        $smpp->enquire_link_resp(seq => $pdu->{seq});
    } elsif ($cmd == 0x80000015) {
        emit('enquire_link_resp', sequence => $pdu->{seq} + 0);
    } elsif ($cmd == 0x00000006) {
        emit('unbind');
        $smpp->unbind_resp(seq => $pdu->{seq});
        $stopping = 1;
        finish(0);
    } elsif ($cmd == 0x80000006) {
        emit('unbind_resp');
        finish(0);
    } elsif (!($cmd & 0x80000000)) {
        $smpp->generic_nack(seq => $pdu->{seq}, status => 0x03);
    }
}

# The message's text (UDH dropped), by its data_coding.
sub text_of {
    my ($pdu, $bytes) = @_;
    if (($pdu->{esm_class} & 0x40) && length $bytes) {
        $bytes = substr($bytes, 1 + ord substr($bytes, 0, 1));
    }
    my $coding = $pdu->{data_coding};
    return Peer::ucs2_decode($bytes) if $coding == 8;
    return $bytes if $coding == 1 || $coding == 3;    # ASCII, Latin-1: one octet per character
    return Peer::gsm_decode($bytes) if $coding == 0;
    return '';
}

sub on_line {
    my ($message) = @_;
    if (($message->{command} // '') eq 'unbind') {
        unbind();
    } else {
        enqueue($message);
    }
}

$SIG{TERM} = $SIG{INT} = sub { unbind() };

my $bind = $BIND{ $opt{mode} };
$bind_seq = $smpp->$bind(system_id => $opt{'system-id'}, password => $opt{password});

while (1) {
    my @deadlines = grep { defined } $next_enquire, $stop_deadline,
        ($opt{seconds} && !$stopping ? $started + $opt{seconds} : undef);
    my $timeout;
    if (@deadlines) {
        ($timeout) = sort { $a <=> $b } @deadlines;
        $timeout -= time;
        $timeout = 0 if $timeout < 0;
    }
    for my $handle ($select->can_read($timeout)) {
        if ($handle == \*STDIN) {
            $select->remove(\*STDIN) unless Peer::read_json_lines(\&on_line);
        } else {
            my $pdu = $smpp->read_pdu;
            if (!$pdu) {
                finish(0) if $stopping;
                emit('closed', %counts, in_flight => scalar keys %in_flight);
                exit 1;
            }
            on_pdu($pdu);
        }
    }
    my $now = time;
    finish(0) if $stop_deadline && $now >= $stop_deadline;
    unbind() if $opt{seconds} && !$stopping && $now >= $started + $opt{seconds};
    if ($next_enquire && $now >= $next_enquire && $bound) {
        $smpp->enquire_link();
        $next_enquire = $now + $opt{'enquire-link-ms'} / 1000;
    }
}
