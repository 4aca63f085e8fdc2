using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Transport;

/// <summary>
/// Parses and formats the endpoint URIs the library and the <c>uhura</c> command accept:
/// <c>tcp://HOST:PORT</c> (port 0 picks a free port when listening), <c>tls://HOST:PORT</c> (TCP with TLS: a
/// <see cref="TlsEndPoint"/>), <c>unix:///ABSOLUTE/PATH</c> and <c>memory://NAME</c> (in-process: a
/// <see cref="MemoryEndPoint"/> of a <see cref="MemoryTransport"/>).
/// </summary>
public static class UhuraEndpoint
{
    /// <summary>Parses an endpoint URI into an <see cref="EndPoint"/>.</summary>
    /// <exception cref="FormatException">The text is not a supported endpoint URI.</exception>
    public static EndPoint Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (uri.StartsWith("unix://", StringComparison.OrdinalIgnoreCase))
        {
            var path = Uri.UnescapeDataString(uri["unix://".Length..]);
            if (path.Length == 0 || path[0] != '/')
            {
                throw new FormatException($"'{uri}' is not a valid unix endpoint: expected unix:///absolute/path.");
            }

            return Unix(path);
        }

        if (uri.StartsWith("memory://", StringComparison.OrdinalIgnoreCase))
        {
            var name = Uri.UnescapeDataString(uri["memory://".Length..].TrimEnd('/'));
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new FormatException($"'{uri}' is not a valid memory endpoint: expected memory://NAME.");
            }

            return new MemoryEndPoint(name);
        }

        if (uri.StartsWith("tls://", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return new TlsEndPoint(Parse("tcp://" + uri["tls://".Length..]));
            }
            catch (FormatException ex)
            {
                throw new FormatException($"'{uri}' is not a valid tls endpoint: expected tls://HOST:PORT.", ex);
            }
        }

        if (uri.StartsWith("tcp://", StringComparison.OrdinalIgnoreCase))
        {
            var rest = uri["tcp://".Length..].TrimEnd('/');
            var colon = rest.LastIndexOf(':');
            if (colon <= 0 || colon == rest.Length - 1)
            {
                throw new FormatException($"'{uri}' is not a valid tcp endpoint: expected tcp://HOST:PORT (or tls://HOST:PORT).");
            }

            var host = rest[..colon];
            if (!int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
            {
                throw new FormatException($"'{uri}' has an invalid port.");
            }

            if (host.StartsWith('[') && host.EndsWith(']'))
            {
                host = host[1..^1];
            }

            return IPAddress.TryParse(host, out var address) ? new IPEndPoint(address, port) : new DnsEndPoint(host, port);
        }

        throw new FormatException($"'{uri}' is not a supported endpoint: use tcp://HOST:PORT, tls://HOST:PORT, unix:///PATH or memory://NAME.");
    }

    /// <summary>
    /// A Unix domain socket endpoint for a file path (relative paths are made absolute). An empty path, or one that
    /// looks like a port number (all digits, as when a TCP port is passed by mistake), is refused before anything is opened.
    /// </summary>
    /// <exception cref="ArgumentException">The path is empty, blank or all digits.</exception>
    public static UnixDomainSocketEndPoint Unix(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException("A Unix socket path cannot be empty.", nameof(path));
        }

        if (path.All(char.IsAsciiDigit))
        {
            throw new ArgumentException($"'{path}' looks like a port number, not a Unix socket path.", nameof(path));
        }

        return new UnixDomainSocketEndPoint(Path.GetFullPath(path));
    }

    /// <summary>Tries to parse an endpoint URI.</summary>
    public static bool TryParse(string uri, out EndPoint? endPoint)
    {
        try
        {
            endPoint = Parse(uri);
            return true;
        }
        catch (FormatException)
        {
            endPoint = null;
            return false;
        }
    }

    /// <summary>Formats an endpoint as a URI (the inverse of <see cref="Parse"/>).</summary>
    public static string Format(EndPoint endPoint) => endPoint switch
    {
        TlsEndPoint tls => Format(tls.Inner) is var inner && inner.StartsWith("tcp://", StringComparison.Ordinal) ? "tls://" + inner["tcp://".Length..] : "tls+" + inner,
        UnixDomainSocketEndPoint unix => "unix://" + unix.ToString(),
        MemoryEndPoint memory => "memory://" + Uri.EscapeDataString(memory.Name),
        IPEndPoint { Address.AddressFamily: AddressFamily.InterNetworkV6 } ip => $"tcp://[{ip.Address}]:{ip.Port}",
        IPEndPoint ip => $"tcp://{ip.Address}:{ip.Port}",
        DnsEndPoint dns => $"tcp://{dns.Host}:{dns.Port}",
        _ => endPoint.ToString() ?? "unknown",
    };
}
