namespace Rx.Uhura.Hosting;

/// <summary>
/// How a hosted <see cref="UhuraServer"/> is run: where it listens. Bound from the same configuration section as its
/// <see cref="UhuraServerOptions"/> (key <c>Endpoint</c>), or set by <c>AddUhuraServer(endpoint)</c>.
/// </summary>
public sealed class UhuraServerHostOptions
{
    /// <summary>The endpoint URI the server listens on when the host starts (<c>tcp://HOST:PORT</c>, <c>tls://HOST:PORT</c>, <c>unix:///PATH</c>). Required.</summary>
    public string? Endpoint { get; set; }
}
