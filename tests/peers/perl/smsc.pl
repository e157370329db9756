#!/usr/bin/perl
# An SMSC built on Perl's Net::SMPP (Debian libnet-smpp-perl), for testing
# smsgate against an SMPP implementation it did not write. Options and event
# lines are described in tests/peers/README.md; the npm-smpp SMSC
# (../node/smsc.js) takes the same ones.
#
# Net::SMPP reads a whole PDU in a blocking call, so one loop over select()
# serves every connection: a peer that sends half a PDU and stops holds the
# others back until it sends the rest. Test ESMEs on loopback do not.
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
    port => 0,
    'system-id' => 'smsgate',
    password => 'secret',
    'id-style' => 'decimal',
    'receipt-delay-ms' => 50,
    'receipt-first' => 0,
    'receipt-text-id' => 'same',
    'receipt-tlv-id' => 'same',
    'receipt-tlvs' => 1,
    throttle => 0,
    'restart-after' => 0,
    rules => '000=absent,001=unknown,002=blacklisted,003=expired,004=rejected,005=replies',
}, flags => [qw(receipt-first receipt-tlvs)]);

use constant {
    ESME_RINVBNDSTS => 0x04, ESME_RALYBND => 0x05, ESME_RINVPASWD => 0x0E,
    ESME_RINVSYSID => 0x0F, ESME_RSUBMITFAIL => 0x45, ESME_RTHROTTLED => 0x58,
    ESME_RINVCMDID => 0x03,
};

my %ID_STYLES = (
    decimal => sub { "$_[0]" },
    hex => sub { sprintf '%x', $_[0] },
    'upper-hex' => sub { sprintf '%X', $_[0] },
    padded => sub { sprintf '%010d', $_[0] },
    uuid => \&uuid4,
);
my $style = $opt{'id-style'};
fail("--id-style must be one of " . join(',', sort keys %ID_STYLES)) unless $ID_STYLES{$style};
for my $name ('receipt-text-id', 'receipt-tlv-id') {
    my $spelling = $opt{$name};
    my $ok = $spelling eq 'same'
        || ($spelling eq 'decimal' && $style =~ /^(hex|upper-hex)$/)
        || ($spelling eq 'hex' && $style =~ /^(decimal|padded)$/);
    fail("--$name $spelling does not fit --id-style $style") unless $ok;
}

# Outcome by number ending, as smsgate's sandbox rules name them.
my %OUTCOMES = (
    delivered => { stat => 'DELIVRD', state => 2, err => 0 },
    replies => { stat => 'DELIVRD', state => 2, err => 0, reply => 1 },
    absent => { stat => 'UNDELIV', state => 5, err => 6 },
    unknown => { stat => 'UNDELIV', state => 5, err => 1 },
    blacklisted => { stat => 'UNDELIV', state => 5, err => 13 },
    expired => { stat => 'EXPIRED', state => 3, err => 0 },
    rejected => { refuse => ESME_RSUBMITFAIL },
);
my @rules;
for my $item (grep { /\S/ } split /,/, $opt{rules}) {
    my ($suffix, $outcome) = map { s/^\s+|\s+$//gr } split /=/, $item;
    fail("--rules: cannot read $item") unless defined $outcome && $suffix =~ /^\d+$/ && $OUTCOMES{$outcome};
    push @rules, [$suffix, $OUTCOMES{$outcome}];
}
@rules = sort { length($b->[0]) <=> length($a->[0]) } @rules;

sub outcome_for {
    my ($destination) = @_;
    for my $rule (@rules) {
        return $rule->[1] if substr($destination, -length $rule->[0]) eq $rule->[0];
    }
    return $OUTCOMES{delivered};
}

sub uuid4 {
    my @b = map { int rand 256 } 1 .. 16;
    $b[6] = ($b[6] & 0x0f) | 0x40;
    $b[8] = ($b[8] & 0x3f) | 0x80;
    my $h = join '', map { sprintf '%02x', $_ } @b;
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4), substr($h, 16, 4), substr($h, 20);
}

# ---------------------------------------------------------------- ids

my $issued = 0;
sub next_id {
    my $n = $opt{'restart-after'} ? ($issued % $opt{'restart-after'}) + 1 : $issued + 1;
    $issued++;
    return $ID_STYLES{$style}->($n);
}

sub spell {
    my ($id, $spelling) = @_;
    return '' . hex($id) if $spelling eq 'decimal';
    return sprintf('%x', $id) if $spelling eq 'hex';
    return $id;
}

# A token bucket of --throttle tokens, refilled at --throttle per second.
my $tokens = $opt{throttle};
my $refilled_at = time;
sub take_token {
    my $rate = $opt{throttle} or return 1;
    my $now = time;
    $tokens += ($now - $refilled_at) * $rate;
    $tokens = $rate if $tokens > $rate;
    $refilled_at = $now;
    return 0 if $tokens < 1;
    $tokens -= 1;
    return 1;
}

# ---------------------------------------------------------------- state

my $listener = Net::SMPP->new_listen($opt{host}, port => $opt{port}, smpp_version => 0x34)
    or fail("cannot listen on $opt{host}:$opt{port}: $!");
my $select = IO::Select->new($listener, \*STDIN);
my %sessions;    # fileno -> { smpp, mode, system_id, unacked => { seq => item } }
my %held;        # system_id -> [ items waiting for a receiver bind ]
my @timers;      # [ due, code ]
my $stopping;

sub later {
    my ($delay_ms, $code) = @_;
    push @timers, [time + $delay_ms / 1000, $code];
    @timers = sort { $a->[0] <=> $b->[0] } @timers;
}

# ---------------------------------------------------------------- deliver_sm

sub receiver_for {
    my ($item) = @_;
    my $origin = $item->{origin};
    if ($origin && ($sessions{ $origin->{fd} } // 0) == $origin && ($origin->{mode} // '') eq 'transceiver') {
        return $origin;
    }
    for my $fd (sort { $a <=> $b } keys %sessions) {
        my $s = $sessions{$fd};
        next unless defined $s->{mode} && $s->{mode} =~ /^(receiver|transceiver)$/;
        return $s if $s->{system_id} eq $item->{system_id};
    }
    return undef;
}

sub hold {
    my ($item) = @_;
    $item->{origin} = undef;
    push @{ $held{ $item->{system_id} } }, $item;
}

sub deliver {
    my ($item) = @_;
    my $session = receiver_for($item);
    if (!$session) {
        hold($item);
        emit('held', kind => $item->{kind}, message_id => $item->{message_id});
        return;
    }
    my $f = $item->{fields};
    my @tlvs = @{ $item->{tlvs} };
    my $seq = $session->{smpp}->deliver_sm(async => 1, %$f, @tlvs);
    $item->{attempts}++;
    $session->{unacked}{$seq} = $item;
    my %tlv_hex;
    for (my $i = 0; $i < @tlvs; $i += 2) {
        $tlv_hex{ sprintf '0x%04x', $Net::SMPP::param_by_name{ $tlvs[$i] } } = unpack 'H*', $tlvs[$i + 1];
    }
    emit('deliver_sm',
        sequence => $seq + 0, kind => $item->{kind}, message_id => $item->{message_id},
        receipt_id => $item->{receipt_id}, stat => $item->{stat},
        source => $f->{source_addr}, destination => $f->{destination_addr},
        esm_class => $f->{esm_class}, data_coding => $f->{data_coding},
        short_message => unpack('H*', $f->{short_message}), tlvs => \%tlv_hex,
        attempt => $item->{attempts});
}

sub yymmddhhmm {
    my @t = gmtime(shift);
    return sprintf '%02d%02d%02d%02d%02d', $t[5] % 100, $t[4] + 1, $t[3], $t[2], $t[1];
}

# The payload after the UDH, and the part number the UDH gives (1 without one).
sub user_data {
    my ($pdu) = @_;
    my $bytes = message_bytes($pdu);
    return ($bytes, 1) unless ($pdu->{esm_class} & 0x40) && length $bytes;
    my $hl = ord substr($bytes, 0, 1);
    my @h = unpack 'C*', substr($bytes, 1, $hl);
    my $part = 1;
    for (my $at = 0; $at + 2 <= @h; $at += 2 + $h[$at + 1]) {
        $part = $h[$at + 4] if $h[$at] == 0x00 && $h[$at + 1] == 3;
        $part = $h[$at + 5] if $h[$at] == 0x08 && $h[$at + 1] == 4;
    }
    return (substr($bytes, 1 + $hl), $part);
}

sub message_bytes {
    my ($pdu) = @_;
    my $short = $pdu->{short_message} // '';
    return length($short) ? $short : ($pdu->{0x0424} // '');
}

sub reversed_fields {
    my ($pdu) = @_;
    return (
        source_addr_ton => $pdu->{dest_addr_ton}, source_addr_npi => $pdu->{dest_addr_npi},
        source_addr => $pdu->{destination_addr},
        dest_addr_ton => $pdu->{source_addr_ton}, dest_addr_npi => $pdu->{source_addr_npi},
        destination_addr => $pdu->{source_addr},
    );
}

sub receipt_for {
    my ($session, $pdu, $message_id, $outcome, $submitted_at) = @_;
    my $text_id = spell($message_id, $opt{'receipt-text-id'});
    my $tlv_id = spell($message_id, $opt{'receipt-tlv-id'});
    my $preview = '';
    if (grep { $_ == $pdu->{data_coding} } 0, 1, 3) {
        ($preview) = user_data($pdu);
        $preview = substr($preview, 0, 20) =~ s/[^\x20-\x7e]/?/gr;
    }
    my $text = sprintf 'id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%03d text:%s',
        $text_id, ($outcome->{stat} eq 'DELIVRD' ? '001' : '000'), yymmddhhmm($submitted_at),
        yymmddhhmm(time), $outcome->{stat}, $outcome->{err}, $preview;
    my @tlvs;
    if ($opt{'receipt-tlvs'}) {
        push @tlvs, receipted_message_id => "$tlv_id\0", message_state => pack('C', $outcome->{state});
        push @tlvs, network_error_code => pack('Cn', 3, $outcome->{err}) if $outcome->{err};
    }
    return {
        kind => 'receipt', system_id => $session->{system_id}, origin => $session,
        message_id => $message_id, receipt_id => $text_id, stat => $outcome->{stat}, attempts => 0,
        fields => { reversed_fields($pdu), esm_class => 0x04, data_coding => 0, short_message => $text },
        tlvs => \@tlvs,
    };
}

sub reply_for {
    my ($session, $pdu, $message_id) = @_;
    my ($payload, $part) = user_data($pdu);
    return undef unless $part == 1;
    my $quoted = ($pdu->{data_coding} <= 1 && length($payload) && $payload !~ /[^\x20-\x7e]/)
        ? substr($payload, 0, 40) : 'your message';
    return {
        kind => 'mo', system_id => $session->{system_id}, origin => $session,
        message_id => $message_id, receipt_id => undef, stat => undef, attempts => 0,
        fields => { reversed_fields($pdu), esm_class => 0, data_coding => 0, short_message => "Re: $quoted" },
        tlvs => [],
    };
}

# ---------------------------------------------------------------- requests

sub on_submit {
    my ($session, $pdu) = @_;
    my $smpp = $session->{smpp};
    if (!defined $session->{mode} || $session->{mode} eq 'receiver') {
        $smpp->submit_sm_resp(seq => $pdu->{seq}, status => ESME_RINVBNDSTS, message_id => '');
        return;
    }
    my $submitted_at = time;
    my $outcome = outcome_for($pdu->{destination_addr});
    my $status = !take_token() ? ESME_RTHROTTLED : ($outcome->{refuse} // 0);
    my $message_id = $status ? '' : next_id();
    emit('submit_sm',
        system_id => $session->{system_id}, sequence => $pdu->{seq} + 0,
        source => $pdu->{source_addr}, destination => $pdu->{destination_addr},
        esm_class => $pdu->{esm_class} + 0, data_coding => $pdu->{data_coding} + 0,
        registered_delivery => $pdu->{registered_delivery} + 0,
        short_message => unpack('H*', message_bytes($pdu)), tlvs => tlv_hex($pdu),
        message_id => $message_id, status => $status);
    my $wanted = $pdu->{registered_delivery} & 0x03;
    my @later;
    if (!$status) {
        push @later, receipt_for($session, $pdu, $message_id, $outcome, $submitted_at)
            if $wanted == 1 || ($wanted == 2 && $outcome->{stat} ne 'DELIVRD');
        push @later, grep { defined } reply_for($session, $pdu, $message_id) if $outcome->{reply};
    }
    my $respond = sub { $smpp->submit_sm_resp(seq => $pdu->{seq}, status => $status, message_id => $message_id) };
    if ($opt{'receipt-first'}) {
        deliver($_) for @later;
        $respond->();
    } elsif ($opt{'receipt-delay-ms'} == 0) {
        $respond->();
        deliver($_) for @later;
    } else {
        $respond->();
        later($opt{'receipt-delay-ms'}, sub { deliver($_) for @later }) if @later;
    }
}

my %BIND_RESP = (receiver => 'bind_receiver_resp', transmitter => 'bind_transmitter_resp',
                 transceiver => 'bind_transceiver_resp');

sub on_bind {
    my ($session, $pdu, $mode) = @_;
    my $status = defined $session->{mode} ? ESME_RALYBND
        : $pdu->{system_id} ne $opt{'system-id'} ? ESME_RINVSYSID
        : $pdu->{password} ne $opt{password} ? ESME_RINVPASWD
        : 0;
    emit('bind', mode => $mode, system_id => $pdu->{system_id}, status => $status);
    my $respond = $BIND_RESP{$mode};
    if ($status) {
        $session->{smpp}->$respond(seq => $pdu->{seq}, status => $status);
        return;
    }
    @$session{qw(mode system_id)} = ($mode, $pdu->{system_id});
    $session->{smpp}->$respond(seq => $pdu->{seq}, system_id => 'perl-smsc');
    if ($mode ne 'transmitter') {
        my $waiting = delete $held{ $session->{system_id} } // [];
        deliver($_) for @$waiting;
    }
}

sub on_deliver_sm_resp {
    my ($session, $pdu) = @_;
    my $item = delete $session->{unacked}{ $pdu->{seq} } or return;
    emit('deliver_sm_resp', sequence => $pdu->{seq} + 0, status => $pdu->{status} + 0,
         kind => $item->{kind}, message_id => $item->{message_id});
    hold($item) if $pdu->{status};    # refused: tried again on the next bind
}

my %HANDLERS = (
    0x00000001 => sub { on_bind(@_, 'receiver') },
    0x00000002 => sub { on_bind(@_, 'transmitter') },
    0x00000009 => sub { on_bind(@_, 'transceiver') },
    0x00000004 => \&on_submit,
    0x80000005 => \&on_deliver_sm_resp,
    0x00000015 => sub {
        my ($s, $pdu) = @_;
        emit('enquire_link', sequence => $pdu->{seq} + 0);
        $s->{smpp}->enquire_link_resp(seq => $pdu->{seq});
    },
    0x00000006 => sub {
        my ($s, $pdu) = @_;
        emit('unbind', system_id => $s->{system_id});
        $s->{smpp}->unbind_resp(seq => $pdu->{seq});
        close_session($s);
    },
    0x80000006 => sub { close_session($_[0]) },
    0x80000015 => sub { },
    0x80000000 => sub { },
);

sub close_session {
    my ($session) = @_;
    return unless delete $sessions{ $session->{fd} };
    $select->remove($session->{smpp});
    $session->{smpp}->close;
    my @unacked = map { $session->{unacked}{$_} } sort { $a <=> $b } keys %{ $session->{unacked} };
    emit('close', system_id => $session->{system_id}, mode => $session->{mode},
         unacknowledged => scalar @unacked);
    # What the session was sent but never acknowledged goes out again, as an SMSC retries.
    for my $item (@unacked) {
        $item->{origin} = undef;
        deliver($item);
    }
}

sub read_from {
    my ($session) = @_;
    my $pdu = $session->{smpp}->read_pdu;
    if (!$pdu) {
        close_session($session);
        return;
    }
    my $handler = $HANDLERS{ $pdu->{cmd} };
    if ($handler) {
        $handler->($session, $pdu);
    } elsif (!($pdu->{cmd} & 0x80000000)) {
        $session->{smpp}->generic_nack(seq => $pdu->{seq}, status => ESME_RINVCMDID);
    }
}

# ---------------------------------------------------------------- control

sub send_mo {
    my ($command) = @_;
    my $ucs2 = ($command->{coding} // '') eq 'ucs2';
    my $text = $command->{text};
    my $bytes = $ucs2 ? Peer::ucs2_encode($text) : Peer::gsm_encode($text);
    deliver({
        kind => 'mo', system_id => $command->{system_id} // $opt{'system-id'}, origin => undef,
        message_id => undef, receipt_id => undef, stat => undef, attempts => 0,
        fields => {
            source_addr_ton => 1, source_addr_npi => 1, source_addr => $command->{source},
            dest_addr_ton => ($command->{destination} =~ /^\d+$/ ? 1 : 5), dest_addr_npi => 1,
            destination_addr => $command->{destination},
            esm_class => 0, data_coding => ($ucs2 ? 8 : 0), short_message => $bytes,
        },
        tlvs => [],
    });
}

sub on_command {
    my ($command) = @_;
    if (($command->{command} // '') eq 'mo') {
        send_mo($command);
    } elsif (($command->{command} // '') eq 'drop') {
        close_session($_) for values %sessions;
    } else {
        emit('error', message => "unknown command " . ($command->{command} // ''));
    }
}

sub stop {
    return if $stopping;
    $stopping = time + 1;
    $select->remove($listener);
    for my $session (values %sessions) {
        $session->{mode} ? $session->{smpp}->unbind(async => 1) : close_session($session);
    }
}
$SIG{TERM} = $SIG{INT} = \&stop;

emit('ready', impl => 'perl', port => $listener->sockport + 0);

while (!$stopping || (%sessions && time < $stopping)) {
    my $timeout = @timers ? $timers[0][0] - time : undef;
    $timeout = 0 if defined $timeout && $timeout < 0;
    $timeout = 0.05 if $stopping;
    for my $handle ($select->can_read($timeout)) {
        if ($handle == $listener) {
            my $smpp = $listener->accept or next;
            my $fd = fileno $smpp;
            $sessions{$fd} = { smpp => $smpp, fd => $fd, mode => undef, system_id => '', unacked => {} };
            $select->add($smpp);
            emit('connect');
        } elsif ($handle == \*STDIN) {
            $select->remove(\*STDIN) unless Peer::read_json_lines(\&on_command);
        } else {
            my ($session) = grep { $_->{smpp} == $handle } values %sessions;
            read_from($session) if $session;
        }
    }
    while (@timers && $timers[0][0] <= time) {
        my $timer = shift @timers;
        $timer->[1]->();
    }
}
exit 0;
