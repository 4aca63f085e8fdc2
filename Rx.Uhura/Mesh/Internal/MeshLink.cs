using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// One socket between two nodes: a read loop that decodes frames (native) or packets (masterless) and hands them to
/// the node, and a write loop that drains a queue of <see cref="OutFrame"/>s into the socket. The handshake state
/// lives here; the decisions that involve other links are the node's, under its lock.
/// </summary>
internal sealed partial class MeshLink
{
    private static long s_nextNumber;

    private readonly UhuraNode _node;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly Channel<OutFrame> _queue = Channel.CreateUnbounded<OutFrame>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _cancel = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _queuedBytes;
    private int _closing;
    private volatile bool _aborted;
    private readonly NativeMeshFrameReader? _frames;
    private readonly MasterlessPacketReader? _packets;

    public MeshLink(UhuraNode node, Stream stream, bool outgoing, string? dialedUri, string? expectedId)
    {
        _node = node;
        _stream = stream;
        Outgoing = outgoing;
        DialedUri = dialedUri;
        ExpectedId = expectedId;
        Number = Interlocked.Increment(ref s_nextNumber);
        _input = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true, useZeroByteReads: true));
        _output = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        if (node.Options.Protocol == MeshProtocol.Masterless)
        {
            _packets = new MasterlessPacketReader(NativeMeshCodec.MaxHandshakeFrame, node.Options.MaxJsonDepth);
        }
        else
        {
            _frames = new NativeMeshFrameReader(NativeMeshCodec.MaxHandshakeFrame, node.Options.MaxJsonDepth);
        }

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

    /// <summary>Completes with the remote's node id when the handshake makes this THE link, or fails.</summary>
    public TaskCompletionSource<string> Handshake { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when both loops have ended and the socket is closed.</summary>
    public Task Closed => _closed.Task;

    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    public void Start()
    {
        var writing = WriteLoopAsync();
        var reading = ReadLoopAsync();
        _ = FinishAsync(reading, writing);
    }

    /// <summary>Queues bytes; false when the link is closing. Past the outbound limit the link is dropped (slow consumer).</summary>
    public bool Enqueue(OutFrame frame)
    {
        if (IsClosing)
        {
            return false;
        }

        var queued = Interlocked.Add(ref _queuedBytes, frame.Length);
        if (queued > _node.Options.MaxOutboundBufferBytes)
        {
            Abort(new PeerLostException($"More than {_node.Options.MaxOutboundBufferBytes} bytes wait to be written to peer {RemoteId ?? "(unidentified)"}; the link is dropped as a slow consumer.", RemoteId));
            return false;
        }

        Liveness.NoteWrite();
        return _queue.Writer.TryWrite(frame);
    }

    public bool Enqueue(byte[] frame) => Enqueue(new OutFrame(null, frame));

    /// <summary>Writes what is queued (and <paramref name="last"/>), then closes the socket. <paramref name="reason"/> null = on purpose.</summary>
    public void CloseAfter(byte[]? last, Exception? reason)
    {
        if (last is not null)
        {
            Enqueue(last);
        }

        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            CloseReason = reason;
            ClosingSince = _node.Time.GetTimestamp();
            _queue.Writer.TryComplete();
        }

        _closingSignal.TrySetResult();
    }

    /// <summary>When a graceful close began (a timestamp of the node's clock).</summary>
    public long? ClosingSince { get; private set; }

    /// <summary>Closes at once, dropping whatever is queued.</summary>
    public void Abort(Exception? reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            CloseReason = reason;
            _queue.Writer.TryComplete();
        }

        _closingSignal.TrySetResult();

        // Callers may hold the node's lock: cancelling socket operations runs callbacks that may need it.
        _aborted = true;
        CancelSoon(_cancel);
    }

    /// <summary>Cancels on the thread pool, never inline (a disposed source means there is nothing left to cancel).</summary>
    internal static void CancelSoon(CancellationTokenSource source) => ThreadPool.UnsafeQueueUserWorkItem(
        static s =>
        {
            try
            {
                s.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        },
        source,
        preferLocal: false);

    private async Task WriteLoopAsync()
    {
        await Task.Yield();
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_cancel.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    if (frame.Head is { } head)
                    {
                        _output.Write(head);
                    }

                    _output.Write(frame.Body.Span);
                    Interlocked.Add(ref _queuedBytes, -frame.Length);
                }

                var flushed = await _output.FlushAsync(_cancel.Token).ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            Abort(new PeerLostException("The connection to the peer was lost: " + ex.Message, RemoteId, ex));
        }
        finally
        {
            // Everything asked for was written (or the link was aborted): half-close so the peer sees the end.
            if (!_aborted)
            {
                await Transport.HalfClose.SendAsync(_stream).ConfigureAwait(false);
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_cancel.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    Liveness.NoteRead();
                }

                var ended = false;
                var consumed = buffer.Start;
                var examined = buffer.Start;
                try
                {
                    ended = _packets is { } packets ? ReadPackets(packets, buffer, ref consumed, ref examined) : ReadFrames(_frames!, buffer, ref consumed, ref examined);
                    if (!ended && result.IsCompleted && _packets is not null && _packets.TryParseLast(buffer.Slice(consumed), out var tail))
                    {
                        // The Node reader parses an unterminated last chunk at the end of the stream: so do we.
                        consumed = buffer.End;
                        examined = consumed;
                        ended = !_node.OnMasterlessPacket(this, tail);
                    }
                }
                finally
                {
                    _input.AdvanceTo(consumed, examined);
                }

                if (ended)
                {
                    break;
                }

                if (result.IsCompleted)
                {
                    if (_frames is not null && buffer.Slice(consumed).Length is > 0 and var left)
                    {
                        Abort(new DecodeException($"The peer closed the link in the middle of a frame ({left} bytes left)."));
                    }
                    else
                    {
                        // The peer closed: anything we still have queued cannot matter to it.
                        Abort(IsClosing ? CloseReason : new PeerLostException("The peer closed the connection.", RemoteId));
                    }

                    break;
                }

                if (Phase == LinkPhase.Stable && _node.DeliveriesFull && !await WaitForDeliveryAsync().ConfigureAwait(false))
                {
                    break; // the link closes meanwhile: what it did not read, the peer resends (bus) or loses with the link (packets)
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (UhuraException ex)
        {
            Abort(ex);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            Abort(new PeerLostException("The connection to the peer was lost: " + ex.Message, RemoteId, ex));
        }
    }

    /// <summary>Decodes and dispatches whole frames; true when the node ended the link.</summary>
    private bool ReadFrames(NativeMeshFrameReader reader, in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        reader.MaxMessageSize = Phase == LinkPhase.Handshaking ? NativeMeshCodec.MaxHandshakeFrame : _node.Options.MaxPacketSize + 64;
        while (reader.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var frame))
        {
            if (!_node.OnNativeFrame(this, frame) || IsClosing)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Decodes and dispatches whole packets; true when the node ended the link.</summary>
    private bool ReadPackets(MasterlessPacketReader reader, in ReadOnlySequence<byte> buffer, ref SequencePosition consumed, ref SequencePosition examined)
    {
        reader.MaxMessageSize = Phase == LinkPhase.Handshaking ? NativeMeshCodec.MaxHandshakeFrame : _node.Options.MaxPacketSize;
        while (reader.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var packet))
        {
            if (!_node.OnMasterlessPacket(this, packet) || IsClosing)
            {
                return true;
            }
        }

        return false;
    }

    private async Task FinishAsync(Task reading, Task writing)
    {
        await reading.ConfigureAwait(false);
        // The reader ended: let queued frames (a refusal, a goodbye) go out unless the link was aborted.
        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            _queue.Writer.TryComplete();
        }

        try
        {
            await writing.WaitAsync(TimeSpan.FromSeconds(5), _node.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _aborted = true;
            _cancel.Cancel();
        }

        await writing.ConfigureAwait(false);
        var graceful = !_aborted;
        if (graceful)
        {
            await DrainAsync().ConfigureAwait(false);
        }

        try
        {
            await _input.CompleteAsync().ConfigureAwait(false);
            // An aborted write loop can leave bytes in the writer. Completing it without an error would flush them, with no
            // token, into a socket that is reset (it throws, and the link never reported its end) or stalled (it hangs):
            // complete it with one, which drops them.
            await _output.CompleteAsync(_aborted ? new OperationCanceledException("The link was aborted.") : null).ConfigureAwait(false);
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
