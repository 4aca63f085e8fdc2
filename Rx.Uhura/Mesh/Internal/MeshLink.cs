using System.Buffers;
using System.IO.Pipelines;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// One socket between two nodes: a read loop that decodes frames (native) or packets (masterless) and hands them to
/// the node, and the same <see cref="Outbox"/> as a <see cref="Connection"/>'s (frames appended under the link's write
/// lock, one writer swapping buffers) for what goes out. The handshake state lives here; the decisions that involve
/// other links are the node's, under its lock.
/// </summary>
internal sealed partial class MeshLink : IOutboxOwner, ILinkReadHandler
{
    private static long s_nextNumber;

    private readonly UhuraNode _node;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly Lock _writeGate = new(); // the outbox's; taken after the node's lock, never before it
    private readonly Outbox _outbox;
    private readonly CancellationTokenSource _cancel = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closing;
    private volatile bool _aborted;
    private readonly MeshWire.Reader _reader;

    public MeshLink(UhuraNode node, Stream stream, bool outgoing, string? dialedUri, string? expectedId)
    {
        _node = node;
        _stream = stream;
        Outgoing = outgoing;
        DialedUri = dialedUri;
        ExpectedId = expectedId;
        Number = Interlocked.Increment(ref s_nextNumber);
        _input = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true, useZeroByteReads: true));
        _outbox = new Outbox(_writeGate, stream, this);
        // An abort ends a write stuck on a peer that does not read: the socket goes, and the write fails.
        _cancel.Token.UnsafeRegister(static state => DisposeQuietly((Stream)state!), stream);
        _reader = node.Wire.CreateReader(node.Options.MaxJsonDepth);
        StartedAt = node.Time.GetTimestamp();
        Liveness = new Liveness(node.Time);
    }

    /// <summary>A process-wide number for logs.</summary>
    public long Number { get; }

    /// <summary>True when this node dialled.</summary>
    public bool Outgoing { get; }

    /// <summary>The URI dialled (outgoing links).</summary>
    public string? DialedUri { get; }

    /// <summary>The node id a reconnection expects to find (outgoing links), or null.</summary>
    public string? ExpectedId { get; }

    // Handshake and link state: written under the node's lock.
    public LinkPhase Phase { get; set; } = LinkPhase.Handshaking;

    public string? RemoteId { get; set; }

    public string? RemoteInfo { get; set; }

    public string? RemoteIncarnation { get; set; }

    /// <summary>Masterless: the remote marked its id packet as an Rx.Uhura node's.</summary>
    public bool RemoteIsUhura { get; set; }

    public int HandshakeStep { get; set; }

    /// <summary>Masterless: this side's priority on an outgoing link (-1 before it is sent).</summary>
    public double Priority { get; set; } = -1;

    /// <summary>Native: the id the arbiter gave the link at confirmation.</summary>
    public ulong LinkId { get; set; }

    /// <summary>Event bus: the peer's Sync arrived and the buffer was resent; bus frames flow.</summary>
    public bool BusInitialized { get; set; }

    /// <summary>Whether the dialler asked to keep the peer (set before the handshake ends).</summary>
    public bool KeepIntent { get; init; }

    /// <summary>Whether the link replaced an earlier link to the same peer.</summary>
    public bool IsReconnect { get; set; }

    /// <summary>Set when the link is replaced by another link to the same peer: its end is not a loss.</summary>
    public bool Superseded { get; set; }

    /// <summary>Whether the peer kept talking on the link once it was ready: a packet, a bus event, an ack or a heartbeat came.</summary>
    public bool MadeProgress { get; set; }

    public long StartedAt { get; }

    /// <summary>What the link last read and wrote, and whether reading is suspended: the node's heartbeat tick checks it.</summary>
    public Liveness Liveness { get; }

    /// <summary>Why the link ended (null: closed on purpose).</summary>
    public Exception? CloseReason { get; private set; }

    /// <summary>
    /// Completes with the remote's node id when the handshake makes this THE link, or fails. Only a dial awaits it: the
    /// failure of an accepted link's handshake (or of a dial given up) is observed here, not left to the finalizer's
    /// <see cref="TaskScheduler.UnobservedTaskException"/>.
    /// </summary>
    public TaskCompletionSource<string> Handshake { get; } = ObservedHandshake();

    private static TaskCompletionSource<string> ObservedHandshake()
    {
        var handshake = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        RetryWithPolicy.ObserveFaults(handshake.Task);
        return handshake;
    }

    /// <summary>Completes when both loops have ended and the socket is closed.</summary>
    public Task Closed => _closed.Task;

    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    public void Start() => _ = FinishAsync(ReadLoopAsync());

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        var end = await LinkReader.RunAsync(_input, this, bytesTag: null, _cancel.Token).ConfigureAwait(false);
        switch (end.Kind)
        {
            case ReadEndKind.PeerClosed when _reader.CutFrameIsError && end.Unconsumed > 0:
                Abort(new DecodeException($"The peer closed the link in the middle of a frame ({end.Unconsumed} bytes left)."));
                break;
            case ReadEndKind.PeerClosed:
                // The peer closed: anything we still have queued cannot matter to it.
                Abort(IsClosing ? CloseReason : new PeerLostException("The peer closed the connection.", RemoteId));
                break;
            case ReadEndKind.Protocol:
                Abort(end.Error);
                break;
            case ReadEndKind.Transport:
                Abort(new PeerLostException("The connection to the peer was lost: " + end.Error!.Message, RemoteId, end.Error));
                break;
            case ReadEndKind.Unexpected:
                _node.LogUnexpected(this, end.Error!);
                Abort(new PeerLostException("The link failed: " + end.Error!.Message, RemoteId, end.Error));
                break;
        }
    }

    Liveness? ILinkReadHandler.Liveness => Liveness;

    bool ILinkReadHandler.DeliveriesFull => Phase == LinkPhase.Stable && _node.DeliveriesFull;

    /// <summary>Decodes and hands to the node the frames or packets of one read; stops when the node ended the link.</summary>
    ValueTask<ReadProgress> ILinkReadHandler.HandleAsync(ReadOnlySequence<byte> buffer, bool isCompleted)
        => new(_reader.Read(_node, this, buffer, isCompleted));

    private async Task FinishAsync(Task reading)
    {
        await reading.ConfigureAwait(false);
        // The reader ended: let queued frames (a refusal, a goodbye) go out unless the link was aborted.
        BeginClosing(graceful: true);
        try
        {
            await Writing.WaitAsync(TimeSpan.FromSeconds(5), _node.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A peer that does not read: what is still queued is dropped, and the socket goes with the write stuck on it.
            _aborted = true;
            _cancel.Cancel();
        }

        var graceful = !_aborted;
        if (graceful)
        {
            await DrainAsync().ConfigureAwait(false);
        }

        try
        {
            await _input.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
        }
        finally
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
            _cancel.Dispose();
            _node.OnLinkClosed(this);
            _closed.TrySetResult();
        }
    }

    public override string ToString() => $"link#{Number} {(Outgoing ? "to" : "from")} {RemoteId ?? DialedUri ?? "?"} ({Phase})";
}
