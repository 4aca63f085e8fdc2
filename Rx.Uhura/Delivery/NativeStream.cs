using Rx.Uhura.Session;

namespace Rx.Uhura.Internal;

/// <summary>
/// One direction pair of a native-protocol stream, which outlives links: the last sequence number assigned to an
/// outgoing event, the last one received, and (on a server, between links) the events sent but not acknowledged, to
/// resend when the client resumes. A client holds one; a server holds one per session.
/// </summary>
internal sealed class NativeStream
{
    private readonly List<OutboundMessage> _held = [];
    private Connection? _live; // server: the link that continues the stream now, from taking the held events until it hands back its own

    public Lock Gate { get; } = new();

    /// <summary>The last sequence number given to an outgoing event (0 = none yet).</summary>
    public long LastSent { get; set; }

    /// <summary>The last sequence number received and handed to delivery (0 = none yet).</summary>
    public long LastReceived { get; set; }

    private long _lastDelivered;

    /// <summary>
    /// Where a resume continues from: the last event received whose subscribers have all returned (events still
    /// queued for delivery are not claimed, so the peer resends them and keeps them unacknowledged until then; the
    /// resends are recognized as duplicates).
    /// </summary>
    public long ResumePoint => Math.Min(LastReceived, Volatile.Read(ref _lastDelivered));

    /// <summary>The dispatcher delivered everything up to <paramref name="seq"/>.</summary>
    public void NoteDelivered(long seq) => AtomicMax.Raise(ref _lastDelivered, seq);

    /// <summary>
    /// Client: the session id proposed in a Hello while the client had none, until a Welcome names the session. Under
    /// <see cref="Gate"/>.
    /// </summary>
    public string? ProposedSessionId { get; set; }

    /// <summary>Client: the id of the client object this stream belongs to (null on a server's streams).</summary>
    public string? Instance { get; init; }

    /// <summary>
    /// Client: the server granted <c>Instances</c> on the last Welcome, so the next Hello may carry <see cref="Instance"/>
    /// (a server that does not read it would take it for the session JSON). Under <see cref="Gate"/>.
    /// </summary>
    public bool ServerReadsInstances { get; set; }

    /// <summary>True once a link of this stream completed its handshake: a later link may resume it.</summary>
    public bool Established { get; set; }

    /// <summary>Starts the stream again from 1 in both directions; returns the held events, which the caller fails.</summary>
    public List<OutboundMessage> Reset()
    {
        lock (Gate)
        {
            LastSent = 0;
            LastReceived = 0;
            Volatile.Write(ref _lastDelivered, 0);
            Established = false;
            _live = null;
            var dropped = new List<OutboundMessage>(_held);
            _held.Clear();
            return dropped;
        }
    }

    /// <summary>True once the server closed: nothing is held any more (what comes is returned to fail).</summary>
    public bool IsClosedForGood => Volatile.Read(ref _closedForGood);

    private bool _closedForGood;

    /// <summary>Takes every held event out (the server is closing), leaving the positions as they are; holds nothing after.</summary>
    public List<OutboundMessage> TakeHeldForClose()
    {
        lock (Gate)
        {
            Volatile.Write(ref _closedForGood, true);
            var held = new List<OutboundMessage>(_held);
            _held.Clear();
            return held;
        }
    }

    /// <summary>
    /// Keeps a closed link's unacknowledged events for the next link (at most <paramref name="limit"/>; the rest are
    /// returned to fail). <paramref name="from"/>, the link handing them back, no longer continues the stream.
    /// </summary>
    public List<OutboundMessage> Hold(IReadOnlyList<OutboundMessage> undelivered, int limit, Connection? from = null)
    {
        lock (Gate)
        {
            if (from is not null && ReferenceEquals(_live, from))
            {
                _live = null;
            }

            var rejected = new List<OutboundMessage>();
            foreach (var message in undelivered)
            {
                if (_held.Count < limit && !_closedForGood)
                {
                    if (message.Seq == 0)
                    {
                        message.StampOrder(); // never written: keeps the stamp it got when it first waited, if it did
                    }

                    _held.Add(message);
                }
                else
                {
                    rejected.Add(message);
                }
            }

            return rejected;
        }
    }

    /// <summary>The stream as a durable store keeps it (server, between links); null when it was never established.</summary>
    public SessionStreamState? Snapshot(string writer)
    {
        lock (Gate)
        {
            if (!Established)
            {
                return null;
            }

            var ordered = InSendOrder(_held); // stored in the order they will be sent
            var held = new HeldEvent[ordered.Count];
            for (var i = 0; i < held.Length; i++)
            {
                held[i] = new HeldEvent(ordered[i].Seq, ordered[i].Payload);
            }

            return new SessionStreamState(LastSent, LastReceived, held, writer);
        }
    }

    /// <summary>
    /// Continues from a stored state (another server's, or this process's before a restart): the positions and held
    /// events are replaced by the stored ones; the events held here before are returned, for the caller to fail.
    /// Stored events that cannot be read back are returned in <paramref name="unreadable"/>'s count and left out.
    /// </summary>
    public List<OutboundMessage> Restore(SessionStreamState state, out int unreadable)
    {
        unreadable = 0;
        var restored = new List<OutboundMessage>(state.Held.Count);
        foreach (var held in state.Held)
        {
            if (OutboundMessage.FromPayload(held.Payload, held.Seq) is { } message)
            {
                if (message.Seq == 0)
                {
                    message.StampOrder(); // stored in send order: stamped in it, before anything sent from now on
                }

                restored.Add(message);
            }
            else
            {
                unreadable++;
            }
        }

        lock (Gate)
        {
            var replaced = new List<OutboundMessage>(_held);
            _held.Clear();
            _held.AddRange(restored);
            LastSent = state.LastSent;
            LastReceived = state.LastReceived;
            Established = true;
            return replaced;
        }
    }

    /// <summary>
    /// A send for the client while its link is gone (or going): held for the next link, unless a link other than
    /// <paramref name="except"/> took over the stream meanwhile, which is returned to write it (nothing is held then).
    /// A held event beyond <paramref name="limit"/> comes back in <paramref name="rejected"/>, to fail.
    /// </summary>
    public Connection? HoldUnlessLive(OutboundMessage message, int limit, Connection except, out OutboundMessage? rejected)
    {
        lock (Gate)
        {
            rejected = null;
            if (_live is { } live && !ReferenceEquals(live, except))
            {
                return live;
            }

            if (_held.Count < limit && !_closedForGood)
            {
                message.StampOrder();
                _held.Add(message);
            }
            else
            {
                rejected = message;
            }

            return null;
        }
    }

    /// <summary>Numbered events by sequence number, then the others by <see cref="OutboundMessage.Order"/> (a stable sort).</summary>
    private static List<OutboundMessage> InSendOrder(List<OutboundMessage> held)
        => [.. held.OrderBy(static m => m.Seq == 0).ThenBy(static m => m.Seq).ThenBy(static m => m.Order)];

    /// <summary>
    /// Takes the held events, as <paramref name="live"/> continues the stream: first those already numbered (sent once),
    /// in sequence order, then those never written, in the order they were sent (<see cref="OutboundMessage.Order"/>:
    /// a link that ended hands its waiting sends back after newer sends may have been held here directly), which get
    /// the next numbers: the receiver's watermark never skips a resend. Sends that follow the session from now on go
    /// to <paramref name="live"/>.
    /// </summary>
    public List<OutboundMessage> TakeHeld(Connection live)
    {
        List<OutboundMessage> held;
        lock (Gate)
        {
            _live = live;
            held = InSendOrder(_held);
            _held.Clear();
        }

        AfterTakeForTests?.Invoke(live);
        return held;
    }

    /// <summary>
    /// Tests only: called (outside the stream's lock) after a link took the held events, to hold that link right there
    /// while another runs; null otherwise.
    /// </summary>
    internal static Action<Connection>? AfterTakeForTests { get; set; }
}
