using System.Net;
using System.Net.Security;
using System.Security.Authentication;

namespace Rx.Uhura.Transport;

/// <summary>
/// TLS over another transport (TCP by default): each stream the inner transport opens is wrapped in an
/// <see cref="SslStream"/> and authenticated with <see cref="TlsOptions"/>. A client's <see cref="ConnectAsync"/>
/// returns once the handshake succeeded. A listener hands each accepted stream out at once and runs its handshake in
/// the background (bounded by <see cref="TlsOptions.HandshakeTimeout"/>), so a slow or silent client never holds up the
/// others; the first read of a stream whose handshake failed throws a <see cref="TlsException"/>.
/// </summary>
public sealed class TlsTransport : ITransport
{
    private readonly ITransport _inner;

    /// <summary>Creates a TLS transport over <paramref name="inner"/> (default: <see cref="SocketTransport.Instance"/>).</summary>
    public TlsTransport(TlsOptions options, ITransport? inner = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _inner = inner ?? SocketTransport.Instance;
    }

    /// <summary>The TLS settings.</summary>
    public TlsOptions Options { get; }

    /// <summary>The clock of the handshake timeout. Default: <see cref="System.TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// The transport for <paramref name="endPoint"/>: a <see cref="TlsTransport"/> over <paramref name="transport"/> for a
    /// <see cref="TlsEndPoint"/>, <see cref="MemoryTransport.Shared"/> for a <see cref="MemoryEndPoint"/> when
    /// <paramref name="transport"/> is a <see cref="SocketTransport"/>, <paramref name="transport"/> itself otherwise.
    /// </summary>
    /// <exception cref="ArgumentException">A <c>tls://</c> endpoint without TLS options.</exception>
    internal static ITransport For(EndPoint endPoint, ITransport transport, TlsOptions? tls, string optionsName, TimeProvider timeProvider)
    {
        if (endPoint is MemoryEndPoint && transport is SocketTransport)
        {
            return MemoryTransport.Shared; // memory:// with the default transport: the process-wide in-memory registry
        }

        if (endPoint is not TlsEndPoint || transport is TlsTransport)
        {
            return transport;
        }

        return tls is null
            ? throw new ArgumentException($"'{UhuraEndpoint.Format(endPoint)}' is a TLS endpoint: set {optionsName}.Tls (TlsOptions) to use it.", nameof(endPoint))
            : new TlsTransport(tls, transport) { TimeProvider = timeProvider };
    }

    /// <inheritdoc/>
    public async ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        if (Options.ServerCertificate is null)
        {
            throw new ArgumentException("Listening with TLS needs TlsOptions.ServerCertificate.", nameof(endPoint));
        }

        var listener = await _inner.BindAsync(Unwrap(endPoint), cancellationToken).ConfigureAwait(false);
        return new TlsListener(this, listener);
    }

    /// <inheritdoc/>
    /// <exception cref="TlsException">The handshake failed or timed out.</exception>
    public async ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var tlsEndPoint = endPoint as TlsEndPoint ?? new TlsEndPoint(endPoint);
        var stream = await _inner.ConnectAsync(tlsEndPoint.Inner, cancellationToken).ConfigureAwait(false);
        string? refusal = null;
        var ssl = new TlsStream(stream);
        var authentication = new SslClientAuthenticationOptions
        {
            TargetHost = Options.TargetHost ?? tlsEndPoint.Host,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) => (refusal = Options.Check(certificate, chain, errors, peerIsClient: false)) is null,
        };
        if (Options.ClientCertificate is { } clientCertificate)
        {
            authentication.ClientCertificates = [clientCertificate];
        }

        using var timeout = new CancellationTokenSource(Options.HandshakeTimeout, TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await ssl.AuthenticateAsClientAsync(authentication, linked.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw Failure(UhuraEndpoint.Format(tlsEndPoint), refusal, ex, timeout.IsCancellationRequested);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static EndPoint Unwrap(EndPoint endPoint) => endPoint is TlsEndPoint tls ? tls.Inner : endPoint;

    private TlsException Failure(string peer, string? refusal, Exception error, bool timedOut) => new(
        refusal is not null ? $"TLS handshake with {peer} failed: {refusal}."
        : timedOut ? $"TLS handshake with {peer} did not complete within {Options.HandshakeTimeout.TotalSeconds:0.###} s."
        : $"TLS handshake with {peer} failed: {error.Message}",
        error);

    /// <summary>Authenticates an accepted stream as the server; the task fails with a <see cref="TlsException"/>.</summary>
    private async Task<TlsStream> AuthenticateServerAsync(Stream stream, string peer, CancellationToken cancellationToken)
    {
        string? refusal = null;
        var ssl = new TlsStream(stream);
        var authentication = new SslServerAuthenticationOptions
        {
            ServerCertificate = Options.ServerCertificate,
            ClientCertificateRequired = Options.RequireClientCertificate,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) => (refusal = Options.Check(certificate, chain, errors, peerIsClient: true)) is null,
        };
        using var timeout = new CancellationTokenSource(Options.HandshakeTimeout, TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await ssl.AuthenticateAsServerAsync(authentication, linked.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw Failure(peer, refusal, ex, timeout.IsCancellationRequested);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private sealed class TlsListener(TlsTransport transport, ITransportListener inner) : ITransportListener
    {
        private readonly CancellationTokenSource _closing = new();

        public EndPoint EndPoint { get; } = new TlsEndPoint(inner.EndPoint);

        public async ValueTask<Stream?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            var stream = await inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
            if (stream is null)
            {
                return null;
            }

            var peer = SocketFacts.Of(stream)?.RemoteAddress ?? "a client";
            return new HandshakingStream(stream, transport.AuthenticateServerAsync(stream, peer, _closing.Token));
        }

        public async ValueTask DisposeAsync()
        {
            await _closing.CancelAsync().ConfigureAwait(false);
            await inner.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// An accepted stream whose server handshake runs in the background: reads and writes wait for it. A failed
    /// handshake makes a read throw the <see cref="TlsException"/> (a write throws it inside an <see cref="IOException"/>).
    /// </summary>
    internal sealed class HandshakingStream(Stream inner, Task<TlsStream> handshake) : Stream, ITransportStream
    {
        private int _disposed;

        public string? RemoteAddress => SocketFacts.Of(inner)?.RemoteAddress;

        public UnixPeerCredentials? PeerCredentials => SocketFacts.Of(inner)?.PeerCredentials;

        /// <summary>Sends the TLS close_notify alert once the handshake succeeded; before that there is nothing to end.</summary>
        public ValueTask ShutdownSendAsync() => handshake.IsCompletedSuccessfully ? handshake.Result.ShutdownSendAsync() : ValueTask.CompletedTask;

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var ssl = await handshake.WaitAsync(cancellationToken).ConfigureAwait(false);
            return await ssl.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var ssl = await WrittenAsync(cancellationToken).ConfigureAwait(false);
            await ssl.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            var ssl = await WrittenAsync(cancellationToken).ConfigureAwait(false);
            await ssl.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                await inner.DisposeAsync().ConfigureAwait(false); // ends a pending handshake
                try
                {
                    var ssl = await handshake.ConfigureAwait(false);
                    await ssl.DisposeAsync().ConfigureAwait(false);
                }
                catch (TlsException)
                {
                }
            }

            await base.DisposeAsync().ConfigureAwait(false);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                inner.Dispose(); // ends a pending handshake
                handshake.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                handshake.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            base.Dispose(disposing);
        }

        private async ValueTask<TlsStream> WrittenAsync(CancellationToken cancellationToken)
        {
            try
            {
                return await handshake.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (TlsException ex)
            {
                throw new IOException(ex.Message, ex);
            }
        }
    }
}
