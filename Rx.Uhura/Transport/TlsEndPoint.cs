using System.Net;

namespace Rx.Uhura.Transport;

/// <summary>
/// An endpoint reached over TLS: <c>tls://HOST:PORT</c> parses to one. Servers, clients and nodes open it with a
/// <see cref="TlsTransport"/> over their transport, using their <c>Tls</c> options.
/// </summary>
public sealed class TlsEndPoint : EndPoint
{
    /// <summary>Wraps the endpoint the TLS stream runs over.</summary>
    public TlsEndPoint(EndPoint inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner is TlsEndPoint tls ? tls.Inner : inner;
    }

    /// <summary>The endpoint the TLS stream runs over (an <see cref="IPEndPoint"/> or a <see cref="DnsEndPoint"/>).</summary>
    public EndPoint Inner { get; }

    /// <inheritdoc/>
    public override System.Net.Sockets.AddressFamily AddressFamily => Inner.AddressFamily;

    /// <summary>The host name a client checks the server's certificate against, by default: the DNS name or IP address of <see cref="Inner"/>.</summary>
    public string Host => Inner switch
    {
        DnsEndPoint dns => dns.Host,
        IPEndPoint ip => ip.Address.ToString(),
        _ => Inner.ToString() ?? string.Empty,
    };

    /// <inheritdoc/>
    public override string ToString() => UhuraEndpoint.Format(this);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is TlsEndPoint other && Inner.Equals(other.Inner);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(typeof(TlsEndPoint), Inner);
}
