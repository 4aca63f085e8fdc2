using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Rx.Uhura.Tests.Security;

/// <summary>
/// Certificates made at test time: a private CA, a server certificate it signed for <c>localhost</c> and
/// <c>127.0.0.1</c>, a client certificate it signed, and an unrelated CA with its own server and client certificates.
/// Each is reloaded from PKCS#12 so that SslStream can use its private key on every platform.
/// </summary>
internal static class TestCertificates
{
    private static readonly DateTimeOffset NotBefore = DateTimeOffset.UtcNow.AddDays(-1);
    private static readonly DateTimeOffset NotAfter = DateTimeOffset.UtcNow.AddDays(30);

    public static X509Certificate2 Ca { get; } = CreateCa("Rx.Uhura Test CA");

    public static X509Certificate2 Server { get; } = CreateSigned(Ca, "localhost", server: true);

    public static X509Certificate2 Client { get; } = CreateSigned(Ca, "uhura-client", server: false);

    public static X509Certificate2 WrongCa { get; } = CreateCa("Unrelated CA");

    public static X509Certificate2 WrongServer { get; } = CreateSigned(WrongCa, "localhost", server: true);

    public static X509Certificate2 WrongClient { get; } = CreateSigned(WrongCa, "uhura-client", server: false);

    private static X509Certificate2 CreateCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        using var certificate = request.CreateSelfSigned(NotBefore, NotAfter.AddDays(1));
        return Reload(certificate);
    }

    private static X509Certificate2 CreateSigned(X509Certificate2 ca, string name, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
        }

        using var signed = request.Create(ca, NotBefore, NotAfter, RandomNumberGenerator.GetBytes(16));
        using var withKey = signed.CopyWithPrivateKey(key);
        return Reload(withKey);
    }

    private static X509Certificate2 Reload(X509Certificate2 certificate)
        => X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
}
