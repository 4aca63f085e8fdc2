using System.Net;

namespace Rx.Uhura.Transport;

/// <summary>
/// Opens byte streams to and from endpoints. The protocols run over any <see cref="Stream"/>, so a transport only has
/// to produce connected streams: TCP and Unix domain sockets are built in (<see cref="SocketTransport"/>).
/// </summary>
public interface ITransport
{
    /// <summary>Starts listening on <paramref name="endPoint"/>.</summary>
    ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default);

    /// <summary>Opens a connection to <paramref name="endPoint"/>.</summary>
    ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default);
}
