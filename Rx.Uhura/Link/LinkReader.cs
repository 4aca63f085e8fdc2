using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Rx.Uhura.Internal;

/// <summary>How far a link's handling of one read got.</summary>
/// <param name="Consumed">Everything before this position was handled (the pipe may release it).</param>
/// <param name="Examined">Everything before this position was looked at (the next read waits for more bytes than that).</param>
/// <param name="Stop">The link ended on the handler's decision: the loop reads no more.</param>
internal readonly record struct ReadProgress(SequencePosition Consumed, SequencePosition Examined, bool Stop = false);

/// <summary>Why a link's read loop ended.</summary>
internal enum ReadEndKind
{
    /// <summary>The peer closed its side: the stream ended (<see cref="ReadEnd.Unconsumed"/> bytes were left unread).</summary>
    PeerClosed,

    /// <summary>The handler ended the link (<see cref="ReadProgress.Stop"/>, or its wait for room saw the link closing).</summary>
    Stopped,

    /// <summary>The loop's token was cancelled, or its read was: the link closes from this side.</summary>
    Canceled,

    /// <summary>Bad input from the peer: <see cref="ReadEnd.Error"/> is the <see cref="UhuraException"/> (decode, size, protocol).</summary>
    Protocol,

    /// <summary>The transport failed (<see cref="IOException"/>, <see cref="SocketException"/>, <see cref="ObjectDisposedException"/>).</summary>
    Transport,

    /// <summary>Anything else: the library's own failure, which the owner logs.</summary>
    Unexpected,
}

/// <summary>How and why a link's read loop ended.</summary>
internal readonly record struct ReadEnd(ReadEndKind Kind, Exception? Error = null, long Unconsumed = 0);

/// <summary>What a link plugs into <see cref="LinkReader"/>: its wire's handling of the bytes read, and its delivery bound.</summary>
internal interface ILinkReadHandler
{
    /// <summary>The link's liveness (read each time: a link may make it after its handshake), or null when it has none.</summary>
    Liveness? Liveness { get; }

    /// <summary>True when the link's deliveries are at their bound: the loop waits on <see cref="WhenRoomAsync"/> before reading on.</summary>
    bool DeliveriesFull { get; }

    /// <summary>
    /// Decodes and handles the messages at the start of <paramref name="buffer"/> (what the last read left plus what
    /// arrived). <paramref name="isCompleted"/>: the peer closed after these bytes. A wire error is thrown as an
    /// <see cref="UhuraException"/>.
    /// </summary>
    ValueTask<ReadProgress> HandleAsync(ReadOnlySequence<byte> buffer, bool isCompleted);

    /// <summary>Completes when there is room to deliver again (true), or when the link began closing meanwhile (false).</summary>
    Task<bool> WhenRoomAsync(CancellationToken cancel);
}

/// <summary>
/// The read loop of every link (client, server and mesh, every wire): it reads the link's pipe, notes that the peer is
/// alive and counts the bytes, hands them to the link's <see cref="ILinkReadHandler"/>, releases what was handled, and
/// stops reading while the link's deliveries are at their bound (back-pressure: the peer's bytes wait in the socket, and
/// the heartbeat timeout is suspended, counting again from when reading resumes). It ends with a <see cref="ReadEnd"/>
/// that the link maps onto its own close reasons; it never completes the pipe (the link may still drain it).
/// </summary>
internal static class LinkReader
{
    /// <summary>Runs the loop until the peer closes, the handler stops it, <paramref name="cancel"/> fires or an error ends it.</summary>
    /// <param name="input">The link's inbound pipe.</param>
    /// <param name="handler">The link's wire handling and delivery bound.</param>
    /// <param name="bytesTag">The <c>uhura.side</c> tag the bytes read are counted under, or null to count nothing.</param>
    /// <param name="cancel">Ends the loop (the link closes from this side).</param>
    public static async Task<ReadEnd> RunAsync(PipeReader input, ILinkReadHandler handler, KeyValuePair<string, object?>? bytesTag, CancellationToken cancel)
    {
        long unconsumed = 0; // bytes the last read left in the pipe: what a read returns beyond them is new
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(cancel).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (buffer.Length > unconsumed)
                {
                    handler.Liveness?.NoteRead();
                    if (bytesTag is { } tag)
                    {
                        Diagnostics.UhuraMetrics.BytesReceived.Add(buffer.Length - unconsumed, tag);
                    }
                }

                var progress = await handler.HandleAsync(buffer, result.IsCompleted).ConfigureAwait(false);
                unconsumed = buffer.Slice(progress.Consumed).Length;
                input.AdvanceTo(progress.Consumed, progress.Examined);
                if (progress.Stop)
                {
                    return new ReadEnd(ReadEndKind.Stopped, Unconsumed: unconsumed);
                }

                if (result.IsCompleted)
                {
                    return new ReadEnd(ReadEndKind.PeerClosed, Unconsumed: unconsumed);
                }

                if (result.IsCanceled)
                {
                    return new ReadEnd(ReadEndKind.Canceled);
                }

                if (handler.DeliveriesFull && !await WaitForRoomAsync(handler, cancel).ConfigureAwait(false))
                {
                    return new ReadEnd(ReadEndKind.Stopped, Unconsumed: unconsumed);
                }
            }
        }
        catch (UhuraException ex)
        {
            return new ReadEnd(ReadEndKind.Protocol, ex);
        }
        catch (OperationCanceledException)
        {
            return new ReadEnd(ReadEndKind.Canceled);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            return new ReadEnd(ReadEndKind.Transport, ex);
        }
        catch (Exception ex)
        {
            return new ReadEnd(ReadEndKind.Unexpected, ex);
        }
    }

    /// <summary>Back-pressure: waits for room with the peer's silence not counted (it counts again from when reading resumes).</summary>
    private static async Task<bool> WaitForRoomAsync(ILinkReadHandler handler, CancellationToken cancel)
    {
        handler.Liveness?.Suspend();
        try
        {
            return await handler.WhenRoomAsync(cancel).ConfigureAwait(false);
        }
        finally
        {
            handler.Liveness?.Resume(); // the peer's silence counts from now (read again: the link may have made it meanwhile)
        }
    }
}
