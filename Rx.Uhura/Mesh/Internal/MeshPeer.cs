namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// What a node knows of one remote node, across links: the current link, where to dial it, the keep flags, packets
/// waiting for a link and the event bus state. Guarded by the node's lock.
/// </summary>
internal sealed class MeshPeer(string id)
{
    public string Id { get; } = id;

    /// <summary>Where to dial the peer again: the URI dialled, or the address the peer announced.</summary>
    public string? Address { get; set; }

    public bool KeepLocal { get; set; }

    /// <summary>The remote's keep flag; true until it sends one (as masterless does).</summary>
    public bool KeepRemote { get; set; } = true;

    /// <summary>THE link to the peer, or null while it is down.</summary>
    public MeshLink? Link { get; set; }

    public bool EverConnected { get; set; }

    /// <summary>When the last link was lost (a timestamp of the node's clock), for retention expiry.</summary>
    public long LostAt { get; set; }

    public string? RemoteIncarnation { get; set; }

    /// <summary>Packets sent while the peer had no link, flushed at the next handshake.</summary>
    public Queue<OutFrame> Pending { get; } = new();

    /// <summary>
    /// The redial of a kept peer (its links, retried with the backoff), from its first lost link until it is forgotten,
    /// no longer kept, or the node closes; null when none runs.
    /// </summary>
    public IDisposable? Redial { get; set; }

    /// <summary>Cancels the redial's dial in flight, when one is: a link to the peer was established meanwhile.</summary>
    public CancellationTokenSource? RedialAttempt { get; set; }

    public BusPeerState Bus { get; } = new();
}

/// <summary>One peer's side of the event bus: the retransmission buffer and the sequence numbers of both directions.</summary>
internal sealed class BusPeerState
{
    /// <summary>Events sent (or to send) to the peer and not yet acknowledged, oldest first.</summary>
    public Queue<BusEntry> Buffer { get; } = new();

    /// <summary>The sequence number of the last event queued for the peer.</summary>
    public ulong LastSent { get; set; }

    /// <summary>
    /// The highest sequence number received from the peer (in its current incarnation): what is at or below it is a
    /// retransmission, dropped. It may run ahead of <see cref="LastDelivered"/> by what waits in the node's dispatcher.
    /// </summary>
    public ulong LastReceived { get; set; }

    /// <summary>
    /// The highest sequence number whose subscribers returned (set by the dispatcher's pump): the only position ever
    /// acknowledged or sent in a Sync, so the peer keeps (and resends on a new link) whatever was not delivered yet.
    /// What it resends that already waits in the dispatcher is at or below <see cref="LastReceived"/>, and dropped.
    /// </summary>
    public ulong LastDelivered { get; set; }

    /// <summary>
    /// Counts the peer's incarnations seen by this node: a delivery queued under an earlier one must not move the new
    /// one's <see cref="LastDelivered"/>, whose numbers start again.
    /// </summary>
    public int Epoch { get; set; }

    /// <summary>The last acknowledgement sent to the peer.</summary>
    public ulong LastAckSent { get; set; }

    /// <summary>Since when an acknowledgement is awaited (a timestamp of the node's clock; null = none is).</summary>
    public long? AckWaitStart { get; set; }
}

internal readonly record struct BusEntry(ulong Seq, byte[] Body, long QueuedAt);
