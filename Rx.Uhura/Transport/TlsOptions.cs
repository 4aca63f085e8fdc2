using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Rx.Uhura.Transport;

/// <summary>
/// TLS settings of a server, client or node (used for <c>tls://</c> endpoints). A server needs
/// <see cref="ServerCertificate"/>; a client needs nothing more for a server with a publicly trusted certificate.
/// The peer's certificate is checked in one of three ways, the first that applies:
/// <list type="number">
/// <item><see cref="PinnedThumbprints"/>: accepted when its SHA-256 thumbprint is one of them, whatever its chain or name;</item>
/// <item><see cref="TrustedRoots"/>: its chain must end at one of these certificates (only these are trusted) and, for a server certificate, its name must match;</item>
/// <item>otherwise the system's trust store, with the name checked (the default).</item>
/// </list>
/// A client certificate is checked the same way, without the name. Start from <see cref="Default"/> and use <c>with</c>.
/// </summary>
public sealed record TlsOptions
{
    /// <summary>The defaults: system trust, no certificates.</summary>
    public static TlsOptions Default { get; } = new();

    /// <summary>The certificate a server (or a listening node) presents, with its private key. Required to listen.</summary>
    public X509Certificate2? ServerCertificate { get; init; }

    /// <summary>Whether a server refuses clients that present no valid certificate. Default false (none asked for).</summary>
    public bool RequireClientCertificate { get; init; }

    /// <summary>The certificate a client (or a dialling node) presents when the server asks for one, with its private key. Default none.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>The name a client expects in the server's certificate. Null (the default) = the host of the URI.</summary>
    public string? TargetHost { get; init; }

    /// <summary>
    /// The only roots trusted (a private CA, or a self-signed certificate); the system's roots are then ignored. Null
    /// (the default) = system trust.
    /// </summary>
    public X509Certificate2Collection? TrustedRoots { get; init; }

    /// <summary>
    /// SHA-256 thumbprints (hex, case and <c>:</c> separators ignored) of the certificates accepted from the peer,
    /// whatever their chain and name. Null or empty (the default) = no pinning.
    /// </summary>
    public IReadOnlyList<string>? PinnedThumbprints { get; init; }

    /// <summary>How long a handshake may take; a peer that takes longer is dropped. Default 10 s (<see cref="UhuraDefaults.TlsHandshakeTimeout"/>).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = UhuraDefaults.TlsHandshakeTimeout;

    /// <summary>The SHA-256 thumbprint of a certificate, as <see cref="PinnedThumbprints"/> expects it (upper-case hex).</summary>
    public static string Thumbprint(X509Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    internal void Validate()
    {
        if (HandshakeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), HandshakeTimeout, "Must be positive.");
        }

        if (PinnedThumbprints?.Any(string.IsNullOrWhiteSpace) == true)
        {
            throw new ArgumentException("A pinned thumbprint cannot be empty.", nameof(PinnedThumbprints));
        }
    }

    /// <summary>
    /// Checks the peer's certificate; returns why it is refused, or null when it is accepted. The name was already
    /// checked by <see cref="SslStream"/> (<see cref="SslPolicyErrors.RemoteCertificateNameMismatch"/>).
    /// </summary>
    internal string? Check(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, bool peerIsClient)
    {
        if (certificate is null)
        {
            return peerIsClient && !RequireClientCertificate ? null : "the peer presented no certificate";
        }

        if (PinnedThumbprints is { Count: > 0 } pins)
        {
            var thumbprint = Thumbprint(certificate);
            return pins.Any(p => string.Equals(p.Replace(":", string.Empty, StringComparison.Ordinal).Trim(), thumbprint, StringComparison.OrdinalIgnoreCase))
                ? null
                : $"the certificate's SHA-256 thumbprint {thumbprint} is not pinned";
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return "the certificate's name does not match the host";
        }

        if (TrustedRoots is { Count: > 0 } roots)
        {
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(roots);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
            {
                foreach (var element in chain.ChainElements)
                {
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }

            using var leaf = new X509Certificate2(certificate);
            return custom.Build(leaf)
                ? null
                : "the certificate does not chain to a trusted root (" + string.Join("; ", custom.ChainStatus.Select(s => s.StatusInformation.Trim())) + ")";
        }

        return errors == SslPolicyErrors.None ? null : $"the certificate is not trusted by the system ({errors})";
    }
}
