using System.Security.Cryptography.X509Certificates;
using Rx.Uhura.Tests.Security;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Cli;

/// <summary><c>--tls-cert</c>, <c>--tls-ca</c>, <c>--tls-pin</c>: <c>serve</c> and <c>send</c> over <c>tls://</c> as real processes.</summary>
[Trait("Category", "Cli")]
public sealed class TlsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-tls-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Send_trusting_the_ca_file_talks_to_serve_with_a_pem_certificate()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tls://127.0.0.1:0", "--tls-cert", ServerPem(), "--echo");
        var endpoint = await ListeningEndpointAsync(serve);
        Assert.StartsWith("tls://127.0.0.1:", endpoint, StringComparison.Ordinal);

        var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", endpoint, "--tls-ca", CaPem(), "hi", "[1]", "--wait-reply");
        using (send)
        {
            Assert.True(exitCode == 0, send.Stderr);
            Assert.Equal("hi", (string?)(await send.WaitForLineAsync("event"))["event"]);
        }

        var pin = TlsOptions.Thumbprint(TestCertificates.Server);
        var (pinnedExit, pinned) = await CliProcess.RunAsync("send", "--connect", endpoint, "--tls-pin", pin, "hi");
        using (pinned)
        {
            Assert.True(pinnedExit == 0, pinned.Stderr);
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Send_refusing_the_server_certificate_exits_one()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tls://127.0.0.1:0", "--tls-cert", ServerPem());
        var endpoint = await ListeningEndpointAsync(serve);

        var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", endpoint, "--tls-pin", TlsOptions.Thumbprint(TestCertificates.WrongServer), "--timeout", "2", "hi");
        using (send)
        {
            Assert.Equal(1, exitCode);
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Serve_on_tls_without_a_certificate_is_bad_usage()
    {
        var (exitCode, serve) = await CliProcess.RunAsync("serve", "--listen", "tls://127.0.0.1:0");
        using (serve)
        {
            Assert.Equal(2, exitCode);
            Assert.Contains("--tls-cert", serve.Stderr, StringComparison.Ordinal);
        }
    }

    private string ServerPem()
    {
        var path = Path.Combine(_dir, "server.pem");
        File.WriteAllText(path, TestCertificates.Server.ExportCertificatePem() + "\n" + TestCertificates.Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n");
        return path;
    }

    private string CaPem()
    {
        var path = Path.Combine(_dir, "ca.pem");
        File.WriteAllText(path, TestCertificates.Ca.ExportCertificatePem() + "\n");
        return path;
    }

    private static async Task<string> ListeningEndpointAsync(CliProcess serve)
    {
        var first = await serve.NextLineAsync();
        Assert.Equal("listening", (string?)first["type"]);
        return (string)first["endpoint"]!;
    }
}
