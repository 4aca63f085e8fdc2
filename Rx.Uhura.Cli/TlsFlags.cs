using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>--tls-cert PATH [--tls-key PATH] [--tls-ca PATH] [--tls-pin SHA256]...</c>: the TLS settings of a command for
/// <c>tls://</c> endpoints. <c>serve</c> presents <c>--tls-cert</c> and, with <c>--tls-ca</c> or <c>--tls-pin</c>,
/// requires client certificates checked against them; <c>send</c> and <c>listen</c> check the server with them (system
/// trust without either) and present <c>--tls-cert</c> when asked; <c>node</c> does both.
/// </summary>
internal sealed class TlsFlags
{
    private readonly Role _role;

    public TlsFlags(Role role)
    {
        _role = role;
        Cert = new Option<string?>("--tls-cert")
        {
            Description = role == Role.Client
                ? "tls://: the client certificate to present when the server asks (PEM, key in it or in --tls-key; or PKCS#12 .pfx/.p12)."
                : "tls://: the certificate to present (PEM, key in it or in --tls-key; or PKCS#12 .pfx/.p12). Required to listen on tls://.",
            HelpName = "PATH",
        };
        Key = new Option<string?>("--tls-key") { Description = "The PEM private key of --tls-cert, when it is not in the same file.", HelpName = "PATH" };
        Ca = new Option<string?>("--tls-ca")
        {
            Description = role == Role.Server
                ? "tls://: require client certificates chaining to the roots in this PEM file."
                : "tls://: trust only the roots in this PEM file (instead of the system's).",
            HelpName = "PATH",
        };
        Pin = new Option<string[]>("--tls-pin")
        {
            Description = role == Role.Server
                ? "tls://: require client certificates with this SHA-256 thumbprint (hex; repeatable)."
                : "tls://: accept the peer certificate with this SHA-256 thumbprint (hex; repeatable), whatever its chain and name.",
            HelpName = "SHA256",
        };
    }

    /// <summary>Which side a command plays.</summary>
    internal enum Role
    {
        /// <summary><c>serve</c>: presents a certificate, may require client certificates.</summary>
        Server,

        /// <summary><c>send</c>, <c>listen</c>: checks the server, may present a certificate.</summary>
        Client,

        /// <summary><c>node</c>: listens and dials with the same settings.</summary>
        Node,
    }

    public Option<string?> Cert { get; }

    public Option<string?> Key { get; }

    public Option<string?> Ca { get; }

    public Option<string[]> Pin { get; }

    /// <summary>Listening on <c>tls://</c> needs <c>--tls-cert</c>: bad usage otherwise.</summary>
    public static void CheckListen(System.Net.EndPoint endPoint, TlsOptions? tls)
    {
        if (endPoint is TlsEndPoint && tls?.ServerCertificate is null)
        {
            throw new UsageException($"listening on {UhuraEndpoint.Format(endPoint)} needs --tls-cert.");
        }
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Cert);
        command.Options.Add(Key);
        command.Options.Add(Ca);
        command.Options.Add(Pin);
    }

    /// <summary>The TLS options the flags describe; without any, system trust for a client or node and null for a server.</summary>
    public TlsOptions? Read(ParseResult parse)
    {
        var certPath = parse.GetValue(Cert);
        var keyPath = parse.GetValue(Key);
        var caPath = parse.GetValue(Ca);
        var pins = parse.GetValue(Pin) ?? [];
        if (certPath is null && keyPath is null && caPath is null && pins.Length == 0)
        {
            return _role == Role.Server ? null : TlsOptions.Default;
        }

        if (keyPath is not null && certPath is null)
        {
            throw new UsageException("--tls-key needs --tls-cert.");
        }

        var certificate = certPath is null ? null : LoadCertificate(certPath, keyPath);
        var roots = caPath is null ? null : LoadRoots(caPath);
        return new TlsOptions
        {
            ServerCertificate = _role == Role.Client ? null : certificate,
            ClientCertificate = _role == Role.Server ? null : certificate,
            RequireClientCertificate = _role == Role.Server && (roots is not null || pins.Length > 0),
            TrustedRoots = roots,
            PinnedThumbprints = pins.Length > 0 ? pins : null,
        };
    }

    private static X509Certificate2 LoadCertificate(string path, string? keyPath)
    {
        try
        {
            var extension = Path.GetExtension(path);
            if (keyPath is null && (extension.Equals(".pfx", StringComparison.OrdinalIgnoreCase) || extension.Equals(".p12", StringComparison.OrdinalIgnoreCase)))
            {
                return X509CertificateLoader.LoadPkcs12FromFile(path, null);
            }

            // A PEM certificate and key loaded in memory serve only after a PKCS#12 round trip on some platforms.
            using var pem = X509Certificate2.CreateFromPemFile(path, keyPath);
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pfx), null);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException($"cannot load the certificate '{path}': {Common.OneLine(ex.Message)}");
        }
    }

    private static X509Certificate2Collection LoadRoots(string path)
    {
        try
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(path);
            return roots.Count > 0 ? roots : throw new CryptographicException("no certificate in the file.");
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new UsageException($"cannot load the roots '{path}': {Common.OneLine(ex.Message)}");
        }
    }
}
