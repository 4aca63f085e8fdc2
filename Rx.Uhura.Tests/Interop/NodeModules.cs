using System.Diagnostics;
using System.Text;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// Locates the repository's <c>interop/</c> folder and makes sure its npm packages are installed
/// (once per test run, safely across parallel test processes). A missing node or npm is an error,
/// never a reason to skip.
/// </summary>
public static class NodeModules
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan LockTimeout = TimeSpan.FromMinutes(6);
    private static readonly Lazy<string> LazyRepoRoot = new(FindRepoRoot);
    private static bool _installed;

    /// <summary>The folder holding <c>Rx.Uhura.sln</c>, found by walking up from the test binaries.</summary>
    public static string RepoRoot => LazyRepoRoot.Value;

    /// <summary>The <c>interop/</c> folder: the Node driver scripts and their package.json.</summary>
    public static string InteropDirectory => Path.Combine(RepoRoot, "interop");

    /// <summary>
    /// Runs <c>npm ci --no-audit --no-fund</c> in <c>interop/</c> when <c>node_modules/uhura</c> is missing.
    /// Throws <see cref="InvalidOperationException"/> when node or npm is not on PATH or the install fails.
    /// </summary>
    public static async Task EnsureInstalledAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_installed)
            {
                return;
            }

            NodeExecutable();
            if (!IsInstalled())
            {
                var npm = FindOnPath(OperatingSystem.IsWindows() ? "npm.cmd" : "npm")
                    ?? throw new InvalidOperationException(
                        "npm was not found on PATH. The interop tests need Node.js 20 with npm to install interop/package-lock.json.");
                await using var fileLock = await AcquireFileLockAsync(Path.Combine(InteropDirectory, ".npm-install.lock"));
                if (!IsInstalled())
                {
                    await RunNpmCiAsync(npm);
                }
            }

            if (!IsInstalled())
            {
                throw new InvalidOperationException(
                    $"npm ci finished but {Path.Combine(InteropDirectory, "node_modules", "uhura")} is still missing.");
            }

            _installed = true;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The full path of <c>node</c> on PATH; throws a clear exception when there is none.</summary>
    public static string NodeExecutable() =>
        FindOnPath(OperatingSystem.IsWindows() ? "node.exe" : "node")
        ?? throw new InvalidOperationException(
            "node was not found on PATH. The interop tests run the real npm uhura package and need Node.js 20; " +
            "install it (e.g. apt-get install nodejs npm) — these tests never skip.");

    private static bool IsInstalled() =>
        File.Exists(Path.Combine(InteropDirectory, "node_modules", "uhura", "package.json"));

    private static async Task RunNpmCiAsync(string npm)
    {
        var startInfo = new ProcessStartInfo(npm)
        {
            WorkingDirectory = InteropDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "ci", "--no-audit", "--no-fund" })
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start {npm}.");
        process.StandardInput.Close();
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(InstallTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new InvalidOperationException(
                $"npm ci in {InteropDirectory} did not finish within {InstallTimeout}.\n{await stdout}\n{await stderr}");
        }

        output.Append(await stdout).Append(await stderr);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"npm ci --no-audit --no-fund in {InteropDirectory} failed with exit code {process.ExitCode}:\n{output}");
        }
    }

    // An exclusive FileStream is an flock on Unix and a share-none handle on Windows, so it
    // keeps test processes of the same run from installing at the same time.
    private static async Task<FileStream> AcquireFileLockAsync(string path)
    {
        var deadline = DateTime.UtcNow + LockTimeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new TimeoutException($"Another process held {path} for more than {LockTimeout}.", e);
                }

                // Another test process holds it while it installs; a file lock has no signal to wait on.
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
        }
    }

    internal static string? FindOnPath(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string FindRepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Rx.Uhura.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException(
            $"No folder containing Rx.Uhura.sln above {AppContext.BaseDirectory}; the interop tests must run from the repository.");
    }
}
