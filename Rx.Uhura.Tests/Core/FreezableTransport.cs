using System.Net;

namespace Rx.Uhura.Tests.Core;

/// <summary>A transport whose connections can be frozen: writes vanish, reads never complete, and disposing one leaves its socket open (until the transport is disposed).</summary>
internal sealed class FreezableTransport(Rx.Uhura.Transport.ITransport inner) : Rx.Uhura.Transport.ITransport, IAsyncDisposable
{
    private readonly List<FreezableStream> _streams = [];

    public ValueTask<Rx.Uhura.Transport.ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        => inner.BindAsync(endPoint, cancellationToken);

    public async ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        var stream = new FreezableStream(await inner.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false));
        lock (_streams)
        {
            _streams.Add(stream);
        }

        return stream;
    }

    /// <summary>Freezes every connection made so far.</summary>
    public void Freeze()
    {
        lock (_streams)
        {
            _streams.ForEach(static s => s.Frozen = true);
        }
    }

    public async ValueTask DisposeAsync()
    {
        FreezableStream[] streams;
        lock (_streams)
        {
            streams = [.. _streams];
        }

        foreach (var stream in streams)
        {
            await stream.InnerStream.DisposeAsync();
        }
    }
}

internal sealed class FreezableStream(Stream inner) : DelegatingStream(inner)
{
    public volatile bool Frozen;

    public Stream InnerStream => Inner;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Frozen)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken); // until the link gives up on it
        }

        var read = await Inner.ReadAsync(buffer, cancellationToken);
        if (Frozen)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken); // what arrives after the freeze is never seen
        }

        return read;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        => Frozen ? ValueTask.CompletedTask : Inner.WriteAsync(buffer, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (!Frozen)
        {
            Inner.Write(buffer, offset, count);
        }
    }

    public override ValueTask DisposeAsync() => Frozen ? ValueTask.CompletedTask : Inner.DisposeAsync();

    protected override void Dispose(bool disposing)
    {
        if (!Frozen)
        {
            base.Dispose(disposing);
        }
    }
}
