using System.Net;

namespace Rx.Uhura.Transport;

/// <summary>A bound listener that accepts connected streams until disposed.</summary>
public interface ITransportListener : IAsyncDisposable
{
    /// <summary>The endpoint actually bound (with the real port when port 0 was asked for).</summary>
    EndPoint EndPoint { get; }

    /// <summary>Waits for the next connection; returns <see langword="null"/> once the listener is closed.</summary>
    ValueTask<Stream?> AcceptAsync(CancellationToken cancellationToken = default);
}
